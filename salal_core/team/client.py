"""A labeler's side of the service: a connection that leases images, sends answers and hears
the engine, and comes back by itself when the connection drops.

Every request carries an id of the client's choosing and waits for its reply. A request the
service has not acknowledged when the connection drops is sent again once it is back; the
service journals an answer id once, so a re-send is never counted twice.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from salal_core.errors import SalalError
from salal_core.events import Emit, Query, QueryReady, ignore
from salal_core.team import endpoint
from salal_core.team.frames import FrameError, read_frame
from salal_core.team.messages import (
    CODEC,
    Acknowledged,
    Correct,
    Forwarded,
    Give,
    Given,
    GivenBy,
    Hello,
    ImageBytes,
    Leased,
    Leave,
    NotJournaled,
    Problem,
    Refused,
    ReviewReady,
    Revoked,
    TakeBack,
    TakenBack,
    ToClient,
    ToService,
    WantImage,
    WantReview,
    Welcome,
)

RECONNECT_EVERY = 0.25  # seconds between tries while the service is away
REPLY_TIMEOUT = 30.0  # seconds a connected service has to answer a request


class Refusal(SalalError):
    """The service refused a request; the message is its one line."""


@dataclass(frozen=True)
class Image:
    item: int
    suffix: str
    data: bytes


class _Pending:
    """A request waiting for its reply (kept across a reconnect and sent again)."""

    def __init__(self, message: ToService) -> None:
        self.message = message
        self.done = threading.Event()
        self.reply: ToClient | None = None


class ServiceClient:
    """Thread-safe. `on_event` hears the engine's events; `on_status` hears one line when
    the connection drops ("reconnecting…") and when it is back."""

    def __init__(
        self,
        target: Path,
        name: str,
        on_event: Emit = ignore,
        on_status: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.target, self.name = target, name
        self.on_event, self.on_status = on_event, on_status
        self._lock = threading.Condition()
        self._conn: socket.socket | None = None
        self._queue: list[Query] = []  # leased to us, unanswered, in order
        self._pending: dict[str, _Pending] = {}  # request id -> waiting request, in order
        self._welcome: Welcome | None = None
        self._refusal: str | None = None  # why the service turned us away at Hello
        self._joined = False  # welcomed once: from then on a drop means reconnecting
        self._closed = False
        self._ids = itertools.count()
        self._session = uuid.uuid4().hex[:12]

    # ---------------------------------------------------------------- connection
    def connect(self) -> Welcome:
        """Connect and say who we are; a one-line SalalError if no service answers."""
        conn = self._open()
        threading.Thread(target=self._read, args=(conn,), name="salal-client", daemon=True).start()
        try:
            return self._wait_welcome()
        except SalalError:
            self.close()
            raise

    def _open(self) -> socket.socket:
        conn = endpoint.connect(self.target)
        with self._lock:
            self._conn, self._welcome, self._refusal = conn, None, None
            self._queue = []  # the service leases afresh to a new connection
        with contextlib.suppress(OSError):  # turned away at once: its Problem says why
            conn.sendall(CODEC.encode(Hello(self.name)))
        return conn

    def _wait_welcome(self) -> Welcome:
        with self._lock:
            self._lock.wait_for(
                lambda: self._welcome is not None or self._conn is None, REPLY_TIMEOUT
            )
            if self._welcome is None:
                raise SalalError(self._refusal or f"the service on {self.target} did not answer")
            self._joined = True
            return self._welcome

    def close(self) -> None:
        """Leave: the service returns our leases to the queue at once."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            self._lock.notify_all()
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(CODEC.encode(Leave()))
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    # ---------------------------------------------------------------- requests
    def queued(self) -> list[Query]:
        with self._lock:
            return list(self._queue)

    def wait_for_queries(self, timeout: float) -> list[Query]:
        with self._lock:
            self._lock.wait_for(lambda: bool(self._queue) or self._closed, timeout)
            return list(self._queue)

    def give(self, answers: Sequence[tuple[int, int]], oracle: GivenBy = "human") -> None:
        """Answers `(item, label)`, journaled by the service when this returns. A Refusal:
        the images are somebody else's now; another SalalError: the journal could not take
        them (a full disk), and they are still ours."""
        request_id = self._new_id()
        given = tuple(Given(item, label) for item, label in answers)
        answered = {item for item, _ in answers}
        try:
            self._request(request_id, Give(request_id, given, oracle))
        except Refusal:  # somebody else's now: not ours to show any more
            self._drop(answered)
            raise
        self._drop(answered)  # (not saved: still ours, to answer again once there is room)

    def _drop(self, items: set[int]) -> None:
        with self._lock:
            self._queue = [q for q in self._queue if q.item not in items]

    def take_back(self) -> list[tuple[Query, int]]:
        """Undo our last answer; its images come back to the front of our queue."""
        request_id = self._new_id()
        reply = self._request(request_id, TakeBack(request_id))
        assert isinstance(reply, TakenBack)
        return list(zip(reply.queries, reply.labels, strict=True))

    def image(self, item: int) -> Image:
        """An image's bytes; a Refusal if the service has none to give (or no answer in
        REPLY_TIMEOUT: the screen draws nothing rather than wait)."""
        reply = self._request(f"image:{item}", WantImage(item), REPLY_TIMEOUT)
        if not isinstance(reply, ImageBytes):
            raise Refusal(f"image {item}: no such image")
        return Image(item, reply.suffix, base64.b64decode(reply.data))

    def review(self, only: str = "") -> ReviewReady:
        """The run's labels in review order (`only`: one labeler's); a Refusal says why not."""
        request_id = self._new_id()
        reply = self._request(request_id, WantReview(request_id, only))
        assert isinstance(reply, ReviewReady)
        return reply

    def correct(self, item: int, label: int) -> None:
        """Correct a labeled image's label; journaled by the service when this returns."""
        request_id = self._new_id()
        self._request(request_id, Correct(request_id, item, label))

    def _new_id(self) -> str:
        return f"{self._session}-{next(self._ids)}"

    def _request(
        self, request_id: str, message: ToService, timeout: float | None = None
    ) -> ToClient:
        """Send and wait for the reply, across reconnections; `timeout` None waits as long
        as it takes (an answer must not be given up on)."""
        pending = _Pending(message)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._pending[request_id] = pending
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):  # a drop: it is sent again on reconnect
                conn.sendall(CODEC.encode(message))
        while not pending.done.wait(0.5):
            with self._lock:
                if self._closed:
                    raise SalalError("the connection to the service is closed")
            if deadline is not None and time.monotonic() > deadline:
                with self._lock:
                    self._pending.pop(request_id, None)
                raise Refusal("the service did not answer in time")
        reply = pending.reply
        if isinstance(reply, Refused):
            raise Refusal(reply.reason)
        if isinstance(reply, NotJournaled):
            raise SalalError(reply.reason)
        assert reply is not None
        return reply

    # ---------------------------------------------------------------- replies
    def _read(self, conn: socket.socket) -> None:
        """Serve replies until closed, across reconnections."""
        while True:
            try:
                body = read_frame(conn)
                message = None if body is None else CODEC.decode(body)
            except (OSError, FrameError):
                message = None
            if message is not None:
                self._dispatch(message)
                continue
            again = self._reconnect()
            if again is None:
                return
            conn = again

    def _dispatch(self, message: ToClient) -> None:
        match message:
            case Welcome():
                with self._lock:
                    self._welcome = message
                    self._lock.notify_all()
                    again = self._joined
                if again:
                    self.on_status("reconnected")
            case Leased(queries):
                with self._lock:
                    known = {q.item for q in self._queue}
                    self._queue.extend(q for q in queries if q.item not in known)
                    self._lock.notify_all()
                if queries:  # to this labeler, these are the questions ready
                    self.on_event(QueryReady(queries[0].round, queries))
            case Revoked(items):
                gone = set(items)
                with self._lock:
                    self._queue = [q for q in self._queue if q.item not in gone]
                self.on_status(
                    f"{len(items)} of your images went back to the queue while you were away; "
                    "the next key brings you more"
                )
            case TakenBack(request_id, queries, _):
                with self._lock:
                    back = {q.item for q in queries}
                    self._queue = [*queries, *(q for q in self._queue if q.item not in back)]
                self._finish(request_id, message)
            case (
                Acknowledged(request_id)
                | Refused(request_id, _)
                | NotJournaled(request_id, _)
                | ReviewReady(request_id)
            ):
                self._finish(request_id, message)
            case ImageBytes(item):
                self._finish(f"image:{item}", message)
            case Forwarded(event):
                self.on_event(event)
            case Problem(reason):
                with self._lock:
                    if self._welcome is None:
                        self._refusal = reason
                self.on_status(f"the service says: {reason}")
            case _:
                self.on_status(f"the service sent a {type(message).__name__}, which is no reply")

    def _finish(self, request_id: str, reply: ToClient) -> None:
        with self._lock:
            pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending.reply = reply
            pending.done.set()

    def _reconnect(self) -> socket.socket | None:
        """The connection dropped: try until the service is back (None once we close), and
        send every unacknowledged request again, in order, after our Hello."""
        with self._lock:
            welcomed = self._welcome is not None
            self._conn = None
            self._lock.notify_all()
            if self._closed or not self._joined:  # never welcomed: connect() says why
                return None
        if welcomed:
            self.on_status(
                "the service is gone; reconnecting… (every answer it acknowledged is saved)"
            )
        while True:
            with self._lock:
                if self._lock.wait_for(lambda: self._closed, RECONNECT_EVERY):
                    return None
            try:
                conn = self._open()
                with self._lock:
                    again = [p.message for p in self._pending.values()]
                for message in again:
                    conn.sendall(CODEC.encode(message))
            except (SalalError, OSError):
                continue
            return conn
