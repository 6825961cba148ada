"""One run, served to its labelers over a Unix socket.

The service holds what one app process held alone: the run's lock and journal, the queue
(leases.py) and the engine (an EngineProcess child, as the app runs it). Its connections
(connections.py) hand it each labeler's requests; an answer is journaled before it is
acknowledged, and the engine's events are forwarded to every labeler.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import assert_never

from salal_core.config import RunConfig
from salal_core.errors import SalalError
from salal_core.events import DataLoaded, Event, QueryReady, StepProgress
from salal_core.run.labelers import NAME
from salal_core.run.oracle import ClassOutsideRun
from salal_core.run.session import SessionImages
from salal_core.team.catch_up import CatchUp
from salal_core.team.connections import Client, Connections
from salal_core.team.endpoint import Admission
from salal_core.team.leases import PER_LABELER, LeaseError, TeamQueue
from salal_core.team.messages import (
    Acknowledged,
    Correct,
    Forwarded,
    Give,
    Hello,
    Leased,
    Leave,
    NotJournaled,
    Problem,
    Refused,
    Revoked,
    TakeBack,
    TakenBack,
    ToService,
    WantImage,
    WantReview,
    Welcome,
)
from salal_core.team.rebuild import labeled_count
from salal_core.team.tally import Tally
from salal_core.team.view import RunView

STEP_INTERVAL = 0.2  # seconds between forwarded step updates: bars move, sockets stay quiet
LEASE_CHECK = 1.0  # seconds between looks for lapsed leases


class RunService:
    def __init__(
        self,
        run_dir: Path,
        config: RunConfig,
        queue: TeamQueue,
        images: SessionImages,
        class_names: Callable[[], tuple[str, ...]],
        admission: Admission,
        log: Callable[[str], None],
    ) -> None:
        self.run_dir, self.config, self.queue, self.images = run_dir, config, queue, images
        self.class_names, self.log = class_names, log
        self.clients: list[Client] = []
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()  # the labeled count: read, kept and sent together
        self._closing = threading.Event()
        self._last_step = 0.0
        self.catch_up = CatchUp()
        self.tally = Tally(queue)
        self._parked: list[tuple[Client, Give]] = []  # answers re-sent before the engine asked
        self.view = RunView(run_dir, config, queue, images, class_names)
        self.connections = Connections(run_dir, admission, self._handle, self._gone, log)

    # ---------------------------------------------------------------- lifetime
    def start(self, group: bool = False) -> Path:
        path = self.connections.start(group)
        threading.Thread(target=self._lease_clock, name="salal-leases", daemon=True).start()
        return path

    def close(self) -> None:
        self._closing.set()
        self.connections.close()
        with self._lock:
            clients = list(self.clients)
        for client in clients:
            client.hang_up()

    def connected(self) -> int:
        with self._lock:
            return len(self.clients)

    # ---------------------------------------------------------------- engine side
    def on_event(self, event: Event) -> None:
        """An emit sink: every client hears the engine; new questions are leased out."""
        if isinstance(event, StepProgress):
            now = time.monotonic()
            if now - self._last_step < STEP_INTERVAL and event.step != event.steps:
                return
            self._last_step = now
        self.catch_up.record(event)
        if isinstance(event, DataLoaded):  # positions are known: the run as the journal has it
            self.tally.start_from(labeled_count(self.queue.journal, self.images.position_of))
            self._replay_parked(rebuild=True)
            self.top_up_all()
        if isinstance(event, QueryReady):  # each labeler hears of their own leases alone
            self._replay_parked()
            self.top_up_all()
            return
        self._forward(event)
        if self.tally.hear(event) or isinstance(event, DataLoaded):
            self._count_changed()

    def _forward(self, event: Event) -> None:
        for client in self._snapshot():
            client.send(Forwarded(event))

    def _count_changed(self) -> None:
        """Every labeler hears the run's labeled count (tally.py), and so will a new one. The
        count is read, kept and sent under one lock, so an older count is never sent last."""
        with self._count_lock:
            count = self.tally.now()
            self.catch_up.record(count)
            self._forward(count)

    def top_up_all(self) -> None:
        for client in self._snapshot():
            self._top_up(client)

    def _snapshot(self) -> list[Client]:
        with self._lock:
            return [c for c in self.clients if c.labeler]

    def _top_up(self, client: Client) -> None:
        new = self.queue.lease(client.labeler, PER_LABELER)
        if new:
            client.send(Leased(tuple(new)))

    def _lease_clock(self) -> None:
        while not self._closing.wait(LEASE_CHECK):
            lapsed = self.queue.expire()
            for client in self._snapshot():
                items = lapsed.get(client.labeler)
                if items:
                    self.log(f"{client.labeler}: idle past the lease, {len(items)} images back")
                    client.send(Revoked(tuple(items)))
            self.top_up_all()  # lapsed leases, and images freed since the last look

    # ---------------------------------------------------------------- requests
    def _gone(self, client: Client) -> None:
        with self._lock:
            if client in self.clients:
                self.clients.remove(client)
        if client.labeler:
            back = self.queue.release(client.labeler)
            self.log(f"{client.labeler} left; {len(back)} leased images back in the queue")
            self.top_up_all()

    def _handle(self, client: Client, message: ToService) -> bool:
        """Carry out one request; False ends the connection. A request the service fails on
        is answered as not saved, its traceback in the log: dropping the connection instead
        would have the client send it again, forever, and its person wait."""
        try:
            return self._carry_out(client, message)
        except Exception as exc:  # a defect: one labeler's request, never the service
            self.log(f"failed on {type(message).__name__}:\n{traceback.format_exc()}")
            failed = SalalError(f"the service failed on it ({exc!r}); see its log")
            match message:
                case (
                    Give(client_id=request)
                    | TakeBack(client_id=request)
                    | WantReview(client_id=request)
                    | Correct(client_id=request)
                ):
                    client.send(self._not_journaled(client, request, failed))
            return True

    def _carry_out(self, client: Client, message: ToService) -> bool:
        if not client.labeler and not isinstance(message, Hello):
            self.connections.problem(client, "say Hello first")
            return True
        match message:
            case Hello(name):
                return self._hello(client, name)
            case Give():
                with self._lock:  # parked before the replay takes them, or not at all
                    parked = not self.queue.asked_any
                    if parked:
                        # A restarted service, its engine still loading: these are answers a
                        # client sends again after a drop; they are taken once the queue is
                        # rebuilt from the journal, or the engine asks again.
                        self._parked.append((client, message))
                if not parked:
                    self._give(client, message)
            case TakeBack(client_id):
                try:
                    undone = self.queue.take_back(client.labeler, client_id)
                except LeaseError as exc:
                    client.send(Refused(client_id, str(exc)))
                except SalalError as exc:
                    client.send(self._not_journaled(client, client_id, exc))
                else:
                    queries = tuple(u.query for u in undone)
                    client.send(TakenBack(client_id, queries, tuple(u.label for u in undone)))
                    self._count_changed()
            case WantImage(item):
                self.queue.touch(client.labeler)
                client.send(self.view.image(item))
            case WantReview(client_id, only):  # seconds of probing: not on this thread
                threading.Thread(
                    target=self._review, args=(client, client_id, only), daemon=True
                ).start()
            case Correct(client_id, item, label):
                self._correct(client, client_id, item, label)
            case Leave():
                return False
            case _:
                assert_never(message)
        return True

    def _give(self, client: Client, give: Give) -> None:
        answers = [(a.item, a.label) for a in give.answers]
        try:
            self.queue.give(client.labeler, give.client_id, answers, give.oracle)
        except (LeaseError, ClassOutsideRun) as exc:
            client.send(Refused(give.client_id, str(exc)))
        except SalalError as exc:
            client.send(self._not_journaled(client, give.client_id, exc))
        else:
            client.send(Acknowledged(give.client_id))
            self._count_changed()
        self._top_up(client)

    def _replay_parked(self, rebuild: bool = False) -> None:
        """Give the answers parked before the queue held a question; with `rebuild`, rebuild
        the queue from the journal first (rebuild.py). Both under the lock a Give checks the
        queue under, so no answer is parked after the replay that would have taken it."""
        with self._lock:
            if rebuild:
                self.queue.rebuild(self.images.position_of)
            parked, self._parked = self._parked, []
        for client, give in parked:
            self._give(client, give)

    def _hello(self, client: Client, name: str) -> bool:
        if client.labeler:
            self.connections.problem(client, "Hello was said already")
            return True
        if not NAME.fullmatch(name):
            client.send(Problem(f"{name!r} is not a labeler name"))
            return False
        with self._lock:
            if any(c.labeler == name for c in self.clients):
                taken = True
            else:
                taken = False
                client.labeler = name
                self.clients.append(client)
        if taken:
            client.send(Problem(f"{name} is labeling this run already; pass another --name"))
            return False
        self.log(f"{name} joined (pid {client.peer.pid})")
        welcome = Welcome(
            name, str(self.run_dir), self.class_names(), self.queue.overlap,
            self.queue.lease_seconds, self.config,
        )  # fmt: skip
        self.queue.touch(name)
        client.send(welcome)
        with self._count_lock:  # the newest count is the last one this client hears
            for event in self.catch_up.events():
                client.send(Forwarded(event))
        self._top_up(client)
        return True

    def _review(self, client: Client, client_id: str, only: str) -> None:
        self.queue.touch(client.labeler)
        try:
            client.send(self.view.review(client_id, only))
        except SalalError as exc:
            client.send(Refused(client_id, str(exc)))

    def _correct(self, client: Client, client_id: str, item: int, label: int) -> None:
        try:
            position = self.view.correctable(item)
            self.queue.correct(client.labeler, client_id, item, position, label)
        except (LeaseError, ClassOutsideRun) as exc:
            client.send(Refused(client_id, str(exc)))
        except SalalError as exc:
            client.send(self._not_journaled(client, client_id, exc))
        else:
            client.send(Acknowledged(client_id))

    def _not_journaled(self, client: Client, client_id: str, exc: SalalError) -> NotJournaled:
        self.log(f"{client.labeler}'s answer was not saved: {exc}")
        return NotJournaled(client_id, str(exc))
