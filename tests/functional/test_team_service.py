"""A run's service without an engine, as its labelers meet it: who may connect, the images it
serves, the run's count it tells every labeler, and the command that carries on."""

from __future__ import annotations

import grp
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from team_driver import service_of

from helpers import photo_archive
from salal_core.cli.commands.serve import stop_at_once
from salal_core.cli.main import main as core_main
from salal_core.config import RunConfig, with_overrides
from salal_core.data.load import read_source
from salal_core.errors import SalalError
from salal_core.events import (
    DataLoaded,
    Event,
    LabeledCount,
    LabelsAdded,
    Query,
    QueryReady,
    RoundEnded,
    ignore,
)
from salal_core.run.labelers import login_name, user_name
from salal_core.run.oracle import Answer
from salal_core.run.session import SessionImages
from salal_core.run.store import RunStore
from salal_core.team.client import Refusal, ServiceClient
from salal_core.team.leases import TeamQueue
from salal_core.team.messages import Acknowledged, Forwarded, Give, Given
from salal_core.team.service import RunService
from salal_tui.desk import JoinedDesk


def test_a_peer_of_another_user_is_refused(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    lines: list[str] = []
    service = service_of(store, owner=os.getuid() + 1, log=lines.append)  # someone else's run
    try:
        owner = user_name(os.getuid() + 1)
        with pytest.raises(SalalError, match=f"this run belongs to {owner}; ask them for --soc"):
            ServiceClient(store.dir, "ana").connect()
        assert lines == [f"refused a connection from uid {os.getuid()} (pid {os.getpid()})"]
    finally:
        service.close()
        store.close()


def test_a_peer_refused_by_a_group_service_is_told_which_group_to_join(tmp_path: Path) -> None:
    """A service with --socket-group: a peer outside the group is asked to be added to it, not
    to ask for the --socket-group it has already."""
    outside = next(g for g in grp.getgrall() if g.gr_gid not in (os.getgid(), *os.getgroups()))
    store = RunStore(tmp_path / "run", create=True)
    service = service_of(store, owner=os.getuid() + 1, group=outside.gr_gid)
    try:
        owner, group = user_name(os.getuid() + 1), outside.gr_name
        with pytest.raises(SalalError) as refused:
            ServiceClient(store.dir, "ana").connect()
        assert str(refused.value) == (
            f"this run belongs to {owner} and shared with the group {group}; ask them to add you "
            f"to {group}"
        )
    finally:
        service.close()
        store.close()


def test_an_image_the_service_does_not_have_is_refused_not_waited_for(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    service = service_of(store)
    client = ServiceClient(store.dir, "ana")
    try:
        assert client.connect().class_names == ("cat", "dog")
        with pytest.raises(Refusal, match="not one of this run's images"):
            client.image(999)
    finally:
        client.close()
        service.close()
        store.close()


def test_a_joined_labeler_gets_an_archive_members_own_bytes(tmp_path: Path) -> None:
    folder, archive = photo_archive(tmp_path)
    config = with_overrides(RunConfig(), {"data.cache_dir": str(tmp_path / "cache")})
    store = RunStore(tmp_path / "run", create=True)
    images = SessionImages(config, (), store)
    images.provide(read_source(archive, 32))
    queue = TeamQueue(store)
    index = images.load().train.ids.index("photos/1.png")
    queue.ask([Query(index, 7, 0.5, 0, (0.5, 0.5), 1)])
    service = service_of(store, queue=queue, images=images, config=config)
    client = ServiceClient(store.dir, "ana")
    try:
        client.connect()
        own = (folder / "1.png").read_bytes()  # 160x120: not the model's 32x32 copy
        deadline = time.monotonic() + 30
        while client.image(7).data != own:  # the copy, until a thread has indexed the archive
            assert time.monotonic() < deadline, "the member's own bytes were never served"
            time.sleep(0.1)
    finally:
        client.close()
        service.close()
        store.close()


class Loaded:
    """The images of a restarted service's load, as far as positions go: items 0..9."""

    loaded = None

    def position_of(self, item: int) -> int | None:
        return item if item < 10 else None


def test_every_labeler_sees_the_runs_count_and_a_newcomer_sees_it_at_once(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.save_classes(["cat", "dog"])
    store.record_answers([Answer(i, i, 0, 0, "initial", 0.0) for i in range(3)])
    store.on_event(RoundEnded(2, 3, 10, 0.5, 7, 0.1, 0.2))  # a run two rounds in
    queue = TeamQueue(store)
    service = service_of(store, queue=queue, images=Loaded())  # type: ignore[arg-type]
    service.on_event(DataLoaded("drawn", 10, 0, ("cat", "dog"), 0.1, True))  # restarted
    asked = tuple(Query(i, i, 0.5, 0, (0.5, 0.5), 3) for i in range(3, 10))
    queue.ask(asked)
    service.on_event(QueryReady(3, asked))
    heard: dict[str, list[LabeledCount]] = {"ana": [], "ben": []}

    def counts(name: str) -> Callable[[Event], None]:
        return lambda e: heard[name].append(e) if isinstance(e, LabeledCount) else None

    ana, ben = (ServiceClient(store.dir, name, counts(name)) for name in ("ana", "ben"))

    def hears(name: str, count: LabeledCount) -> None:
        deadline = time.monotonic() + 10
        while heard[name][-1:] != [count]:
            assert time.monotonic() < deadline, (name, heard[name])
            time.sleep(0.02)

    try:
        ana.connect()
        hears("ana", LabeledCount(3, 2))  # at once: the journal's count, not 0 in round 0
        ben.connect()
        ana.give([(ana.wait_for_queries(10)[0].item, 1)])
        hears("ben", LabeledCount(4, 2))  # ana's answer, in ben's count too
        ana.take_back()
        hears("ben", LabeledCount(3, 2))
        item = ana.wait_for_queries(10)[0].item
        ana.give([(item, 1)])
        hears("ben", LabeledCount(4, 2))
        assert queue.collect([item]) == {item: 1}
        told = len(heard["ben"])
        service.on_event(LabelsAdded(3, (item,), (1,), "human", 4, 10))  # the engine took it
        deadline = time.monotonic() + 10
        while len(heard["ben"]) == told and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heard["ben"][told:] == [LabeledCount(4, 2)]  # said again, and counted once
    finally:
        ana.close()
        ben.close()
        service.close()
        store.close()


def test_carrying_on_as_a_labeler_keeps_their_name(tmp_path: Path) -> None:
    """The quit dialog and the last line say how to carry on: as the same labeler."""
    store = RunStore(tmp_path / "run", create=True)
    service = service_of(store)
    try:
        for name, flag in (("ana2", " --name ana2"), (login_name(), "")):
            desk = JoinedDesk(store.dir, name, ignore)
            assert desk.carry_on == f"salal-tui --join {store.dir}{flag}"
            desk.stop()
    finally:
        service.close()
        store.close()


def test_a_second_serve_of_a_served_run_says_how_to_join_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.save_config(RunConfig())
    service = service_of(store)  # the first serve holds the run
    try:
        assert core_main(["serve", str(store.dir)]) == 2
    finally:
        service.close()
        store.close()
    assert capsys.readouterr().err == (
        f"salal-core: error: {store.dir} is being labeled; label beside them with: "
        f"salal-tui --join {store.dir}\n"
    )


def test_a_request_the_service_fails_on_is_answered_not_saved_and_the_service_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect while handling an answer (here: the journal raising what it never should)
    is that answer refused as not saved, and its traceback in the log; the connection and
    the service stay, so the labeler's next answer is taken. Before, the connection dropped,
    the client sent the answer again on reconnecting, forever, and the app hung."""
    store = RunStore(tmp_path / "run", create=True)
    store.save_classes(["cat", "dog"])
    queue = TeamQueue(store)
    logged: list[str] = []
    service = service_of(store, queue=queue, images=Loaded(), log=logged.append)  # type: ignore[arg-type]
    service.on_event(DataLoaded("drawn", 10, 0, ("cat", "dog"), 0.1, False))
    asked = tuple(Query(i, i, 0.5, 0, (0.5, 0.5), 1) for i in range(10))
    queue.ask(asked)
    service.on_event(QueryReady(1, asked))
    record = RunStore.record_answers
    broken = {"now": True}

    def failing_once(self: RunStore, answers: list[Answer]) -> None:
        if broken.pop("now", False):
            raise KeyError("a defect")
        record(self, answers)

    monkeypatch.setattr(RunStore, "record_answers", failing_once)
    ana = ServiceClient(store.dir, "ana", ignore)
    try:
        ana.connect()
        first, second = ana.wait_for_queries(10)[:2]
        with pytest.raises(SalalError, match=r"the service failed on it \(KeyError"):
            ana.give([(first.item, 1)])
        assert any("Traceback" in line and "KeyError" in line for line in logged)
        ana.give([(second.item, 0)])  # the same connection: the service went on
        assert [(r.item, r.label) for r in store.journal_rows()] == [(second.item, 0)]
    finally:
        ana.close()


def test_a_class_outside_the_run_given_or_corrected_is_refused_by_the_journal(
    tmp_path: Path,
) -> None:
    """The run store is the one check of a class; the service tells the labeler it refused
    the request (a Refusal), not that the journal could not be written."""
    store = RunStore(tmp_path / "run", create=True)
    store.save_classes(["cat", "dog"])
    queue = TeamQueue(store)
    lines: list[str] = []
    service = service_of(store, queue=queue, images=Loaded(), log=lines.append)  # type: ignore[arg-type]
    queue.ask([Query(i, i, 0.5, 0, (0.5, 0.5), 1) for i in range(3)])
    client = ServiceClient(store.dir, "ana")
    try:
        client.connect()
        item = client.wait_for_queries(10)[0].item
        with pytest.raises(Refusal, match=r"class 2 is not one of this run's 2 \(0\.\.1\)"):
            client.give([(item, 2)])
        with pytest.raises(Refusal, match="class -3 is not one of this run's 2"):
            client.correct(5, -3)
        assert store.journal_rows() == [] and not [x for x in lines if "not saved" in x]
    finally:
        client.close()
        service.close()
        store.close()


class Listener:
    """A labeler's connection as the service sees it, without a socket: what it is sent."""

    def __init__(self, labeler: str) -> None:
        self.labeler, self.sent = labeler, list[object]()

    def send(self, message: object) -> bool:
        self.sent.append(message)
        return True

    def hang_up(self) -> None:
        return None

    def heard(self, kind: type, within: float = 10.0) -> list[object]:
        deadline = time.monotonic() + within
        while not [m for m in self.sent if isinstance(m, kind)] and time.monotonic() < deadline:
            time.sleep(0.02)
        return [m for m in self.sent if isinstance(m, kind)]


class RacingQueue(TeamQueue):
    """A queue whose first look at `asked_any` lets `race` run (in a thread, for at most a
    second) before it answers, as the DataLoaded thread may run between check and park."""

    race: Callable[[], None] | None = None

    @property
    def asked_any(self) -> bool:
        answer = super().asked_any
        race, self.race = self.race, None
        if race is not None:
            thread = threading.Thread(target=race, daemon=True)
            thread.start()
            thread.join(timeout=1.0)  # with the lock held, the rebuild waits for the park
        return answer


def test_an_answer_resent_while_the_queue_is_rebuilt_is_taken(tmp_path: Path) -> None:
    """A restarted service: ana's answer comes again while the images load. The service finds
    no question yet, and parks it; the rebuild that runs meanwhile replays the parked answers.
    It must not run between the look and the park, or the answer waits for the engine's next
    questions, unacknowledged."""
    store = RunStore(tmp_path / "run", create=True)
    store.save_classes(["cat", "dog"])
    store.questions.save([Query(i, i, 0.5, 0, (0.5, 0.5), 1) for i in range(3)])  # before the stop
    queue = RacingQueue(store)
    service = service_of(store, queue=queue, images=Loaded())  # type: ignore[arg-type]
    ana = Listener("ana")
    loaded = DataLoaded("drawn", 10, 0, ("cat", "dog"), 0.1, True)
    queue.race = lambda: service.on_event(loaded)
    try:
        service._handle(ana, Give("a-1", (Given(1, 0),)))  # type: ignore[arg-type]
        assert ana.heard(Acknowledged) == [Acknowledged("a-1")]  # was: never
        assert [(r.item, r.labeler, r.label) for r in store.journal_rows()] == [(1, "ana", 0)]
    finally:
        service.close()
        store.close()


class SlowTally:
    """A tally whose first count is read before a newer one and handed out after it."""

    def __init__(self, service: RunService) -> None:
        self.service, self.reads = service, 0
        self.newer_sent = threading.Event()

    def now(self) -> LabeledCount:
        self.reads += 1
        if self.reads == 1:  # the older count: read, then held up until the newer one is out
            self.newer_sent.wait(timeout=1.0)
            return LabeledCount(1, 0)
        self.newer_sent.set()
        return LabeledCount(2, 0)


def test_the_last_count_a_labeler_hears_is_the_newest(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    service = service_of(store)
    ana = Listener("ana")
    service.clients.append(ana)  # type: ignore[arg-type]
    service.tally = SlowTally(service)  # type: ignore[assignment]
    try:
        older = threading.Thread(target=service._count_changed)
        older.start()
        while service.tally.reads == 0:  # type: ignore[attr-defined]
            time.sleep(0.01)
        service._count_changed()  # a newer count, while the older one is on its way
        older.join()
        counts = [m.event for m in ana.sent if isinstance(m, Forwarded)]
        assert counts[-1] == LabeledCount(2, 0)  # was: the older 1, sent after it
        assert [e for e in service.catch_up.events() if isinstance(e, LabeledCount)] == [
            LabeledCount(2, 0)
        ]
    finally:
        service.close()
        store.close()


class Exited(Exception):
    """os._exit, in a test: the status it was given."""


def test_a_second_ctrl_c_ends_serve_at_once_whatever_lock_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The signal handler may interrupt a thread that holds the service's lock: the second
    Ctrl-C takes none, says one line, takes the socket off the disk and exits 128 + SIGINT."""
    store = RunStore(tmp_path / "run", create=True)
    service = service_of(store)
    socket_file = service.connections.socket_path
    assert socket_file is not None and socket_file.is_socket()
    hosted = SimpleNamespace(session=SimpleNamespace(run_dir=store.dir), socket_path=socket_file)
    statuses: list[int] = []

    def exit_now(status: int) -> None:
        statuses.append(status)
        raise Exited()

    monkeypatch.setattr(os, "_exit", exit_now)

    def second_ctrl_c() -> None:
        with pytest.raises(Exited):
            stop_at_once(signal.SIGINT, [hosted], "carry on with: salal-core serve RUN")  # type: ignore[list-item]

    try:
        with service._lock:  # held by the interrupted thread
            handler = threading.Thread(target=second_ctrl_c)
            handler.start()
            handler.join(timeout=5.0)
            assert not handler.is_alive() and statuses == [130]
        assert not socket_file.exists()
        assert capfd.readouterr().err.strip() == (
            "stopped at once; carry on with: salal-core serve RUN"
        )
    finally:
        service.close()
        store.close()
