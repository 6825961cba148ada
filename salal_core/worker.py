"""The engine in a child process, so that training never holds the interface's interpreter lock.

The parent keeps what a person touches: the run directory's lock, the human oracle with its
journal (an answer is on disk before the next image is drawn) and the images to draw. The
child loads, pretrains, fine-tunes and scores. One pipe joins them: events, `ask` and
`collect` go up; answers and `stop` come down. If the parent dies, Linux kills the child with
it (PR_SET_PDEATHSIG), and whatever either was writing is as safe as after any SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal

from .engine import Engine
from .errors import OracleClosed, SalalError
from .events import DataLoaded, Emit, Event, OracleName, Query, fan_out
from .session import RunRequest, Session
from .store import RunStore
from .summary import RunSummary

STOP_GRACE = 5.0  # seconds a stopping child gets to finish its step before it is killed
ENGINE_NICENESS = 10  # the person's keypresses win the CPU over the training process
LOG_NAME = "engine.log"  # the child's stdout and stderr: the terminal belongs to the app


# What crosses the pipe: child to parent, and parent to child.
UpKind = Literal["event", "ask", "collect", "finished", "error", "crash"]
DownKind = Literal["answers", "stop"]
Up = tuple[UpKind, Any]
Down = tuple[DownKind, Any]


@dataclass(frozen=True)
class ChildSpec:
    """What the child needs to rebuild the parent's engine from its run directory."""

    request: RunRequest
    niceness: int
    parent_pid: int


class RemoteOracle:
    """The child's oracle: forwards `ask` and `collect` to the parent's oracle over the pipe."""

    name: OracleName = "human"

    def __init__(self, send: Callable[[Up], None]) -> None:
        self._send = send
        self._answers: queue.Queue[dict[int, int] | None] = queue.Queue()
        self._closed = False

    def ask(self, queries: Sequence[Query]) -> None:
        self._send(("ask", list(queries)))

    def collect(self, indices: Sequence[int]) -> dict[int, int]:
        if self._closed:
            raise OracleClosed()
        self._send(("collect", [int(i) for i in indices]))
        answers = self._answers.get()
        if answers is None:
            raise OracleClosed()
        return answers

    def deliver(self, answers: dict[int, int]) -> None:
        self._answers.put(answers)

    def close(self) -> None:
        self._closed = True
        self._answers.put(None)


class EngineProcess:
    """Runs the session's engine in a child process; `run()` and `stop()` behave as the
    engine's own, and the session (this side) keeps the oracle and the images."""

    def __init__(self, session: Session, emit: Emit, niceness: int = ENGINE_NICENESS) -> None:
        self.session, self.emit, self.niceness = session, emit, niceness
        self.process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        # Spawning needs multiprocessing's resource tracker, which starts by handing it our
        # stderr; inside a Textual app stderr is a capture object with no file behind it, so
        # start the tracker now, while stderr is still the terminal's.
        resource_tracker.ensure_running()

    @property
    def log_path(self) -> Path:
        return self.session.run_dir / LOG_NAME

    def run(self) -> RunSummary | None:
        """Start the child and serve it until it finishes; blocks (call it from a thread).
        None when the child had to be killed on its way out (a stop it did not heed)."""
        spec = ChildSpec(self.session.request, self.niceness, os.getpid())
        context = mp.get_context("spawn")  # fork would copy the app's threads and locks
        conn, child_conn = context.Pipe()
        self.process = process = context.Process(
            target=_child_main, args=(child_conn, spec), name="salal-engine", daemon=True
        )
        try:
            process.start()
            child_conn.close()
            self._conn = conn
            if self._stopping.is_set():
                self._send(("stop", None))
            return self._serve(conn, process)
        finally:
            self._finish()
            self.session.close()

    def stop(self) -> None:
        """Ask the child, from any thread, to save and stop; it is killed if it dawdles."""
        self._stopping.set()
        if self.session.oracle is not None:  # no more answers: a waiting collect returns
            self.session.oracle.close()
        self._send(("stop", None))

    def _serve(self, conn: Connection, process: BaseProcess) -> RunSummary | None:
        deadline: float | None = None
        while True:
            if deadline is None and self._stopping.is_set():
                deadline = time.monotonic() + STOP_GRACE
            if deadline is not None and time.monotonic() > deadline:
                # Safe: the journal and checkpoints are built to survive a kill at any moment.
                process.kill()
                return None
            if not conn.poll(0.2):
                continue
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                raise self._died(process) from None
            if kind == "event":
                self._forward(payload)
            elif kind == "ask" and self.session.oracle is not None:
                self.session.oracle.ask(payload)
            elif kind == "collect":
                threading.Thread(target=self._answer, args=(payload,), daemon=True).start()
            elif kind == "finished":
                summary: RunSummary = payload
                return summary
            elif kind == "error":
                raise SalalError(payload)
            else:  # "crash": a bug in the engine; its traceback is in the log too
                raise RuntimeError(f"the engine process failed:\n{payload}")

    def _forward(self, event: Event) -> None:
        if isinstance(event, DataLoaded):
            # The child has just written the decode cache, so this is the warm load.
            self.session.images.load()
        self.emit(event)

    def _answer(self, indices: list[int]) -> None:
        """Wait for the person in a thread of its own, then hand the answers down."""
        assert self.session.oracle is not None  # only a human oracle's child collects
        try:
            answers = self.session.oracle.collect(indices)
        except OracleClosed:
            return  # stopping: `stop` has told the child already
        self._send(("answers", answers))

    def _send(self, message: Down) -> None:
        with self._send_lock:
            if self._conn is None:
                return
            with contextlib.suppress(BrokenPipeError, OSError):  # gone: `_serve` reports how
                self._conn.send(message)

    def _died(self, process: BaseProcess) -> SalalError:
        process.join(timeout=5)
        code = process.exitcode
        return SalalError(
            f"the engine process stopped unexpectedly (exit code {code}); see "
            f"{self.log_path}, then carry on with --resume {self.session.run_dir}"
        )

    def _finish(self) -> None:
        with self._send_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self.process is not None and self.process.pid is not None:
            self.process.join(timeout=STOP_GRACE)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


# ---------------------------------------------------------------------------- the child


def _child_main(conn: Connection, spec: ChildSpec) -> None:
    _detach(spec)
    send_lock = threading.Lock()

    def send(message: Up) -> None:
        with send_lock:
            conn.send(message)

    def forward(event: Event) -> None:
        try:
            send(("event", event))
        except (BrokenPipeError, OSError):
            raise OracleClosed() from None  # the app is gone: stop as if the person quit

    remote = RemoteOracle(send) if spec.request.oracle == "human" else None
    try:
        # The parent holds the run's lock, and has applied and saved the configuration.
        store = RunStore(spec.request.run_dir, create=False, lock=False)
        engine = Engine(
            store.load_config(), store, spec.request, fan_out(store.on_event, forward), remote
        )
        threading.Thread(target=_listen, args=(conn, engine, remote), daemon=True).start()
        result: Up = ("finished", engine.run())
    except SalalError as exc:
        result = ("error", str(exc))
    except BaseException:
        traceback.print_exc()
        result = ("crash", traceback.format_exc())
    with contextlib.suppress(BrokenPipeError, OSError):  # the app is gone: nobody to tell
        send(result)
    conn.close()


def _listen(conn: Connection, engine: Engine, remote: RemoteOracle | None) -> None:
    """Answers and `stop` from the parent; a closed pipe means the parent is gone."""
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            kind, payload = "stop", None
        if kind == "answers" and remote is not None:
            remote.deliver(payload)
        elif kind == "stop":
            engine.stop()
            return


def _detach(spec: ChildSpec) -> None:
    """Leave the terminal to the app: no Ctrl-C, output to the run's log, lower priority, and
    die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log = os.open(spec.request.run_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != spec.parent_pid:  # it died before the line above took effect
            os._exit(1)
    if spec.niceness:
        os.nice(spec.niceness)
