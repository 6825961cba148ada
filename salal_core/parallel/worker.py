"""The engine in a child process, so that training never holds the interface's interpreter lock.

The parent keeps what a person touches: the run directory's lock, the human oracle with its
journal (an answer is on disk before the next image is drawn) and the images to draw. The
child loads, pretrains, fine-tunes and scores. One pipe joins them: events, `ask` and
`collect` go up; answers and `stop` come down. If the parent dies, Linux kills the child with
it (PR_SET_PDEATHSIG), and whatever either was writing is as safe as after any SIGKILL.

With `ranks` above one (`salal-tui --ranks N`) the engine is a local torchrun-style group:
the child on the pipe is rank 0, and N - 1 more children follow it (run/group.py), each on its own
GPU, or as gloo processes on the CPU.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import assert_never

from salal_core import distributed
from salal_core.errors import OracleClosed, SalalError
from salal_core.events import DataLoaded, Emit, Event
from salal_core.parallel.engine_child import LOG_NAME, ChildSpec, child_main, follower_main
from salal_core.parallel.pipe import (
    Answers,
    Ask,
    Collect,
    CountUnanswered,
    Crashed,
    Down,
    EngineEvent,
    Failed,
    Finished,
    Stop,
    Unanswered,
    Up,
)
from salal_core.parallel.spawning import prepare_to_spawn
from salal_core.run.oracle import Oracle
from salal_core.run.session import Session
from salal_core.run.summary import RunSummary

STOP_GRACE = 5.0  # seconds a stopping child gets to finish its step before it is killed
ENGINE_NICENESS = 10  # the person's keypresses win the CPU over the training process


class EngineProcess:
    """Runs the session's engine in a child process; `run()` and `stop()` behave as the
    engine's own, and the session (this side) keeps the oracle and the images. `oracle`
    stands in for the session's own (the service's shared queue)."""

    def __init__(
        self,
        session: Session,
        emit: Emit,
        niceness: int = ENGINE_NICENESS,
        ranks: int = 1,
        oracle: Oracle | None = None,
    ) -> None:
        self.session, self.emit, self.niceness, self.ranks = session, emit, niceness, ranks
        self.oracle: Oracle | None = oracle if oracle is not None else session.oracle
        self.process: BaseProcess | None = None
        self.followers: list[BaseProcess] = []
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        prepare_to_spawn()  # built before the app starts, while stderr is the terminal's

    @property
    def log_path(self) -> Path:
        return self.session.run_dir / LOG_NAME

    def run(self) -> RunSummary | None:
        """Start the child and serve it until it finishes; blocks (call it from a thread).
        None when the child had to be killed on its way out (a stop it did not heed)."""
        specs = [
            ChildSpec(self.session.request, self.niceness, os.getpid(), env)
            for env in distributed.local_group(self.ranks)
        ]
        context = mp.get_context("spawn")  # fork would copy the app's threads and locks
        conn, child_conn = context.Pipe()
        self.process = process = context.Process(
            target=child_main, args=(child_conn, specs[0]), name="salal-engine", daemon=True
        )
        self.followers = [
            context.Process(
                target=follower_main, args=(spec,), name=f"salal-rank-{rank}", daemon=True
            )
            for rank, spec in enumerate(specs[1:], start=1)
        ]
        try:
            with _interrupts_held():
                process.start()
                for follower in self.followers:
                    follower.start()
            child_conn.close()
            self._conn = conn
            if self._stopping.is_set():
                self._send(Stop())
            return self._serve(conn, process)
        finally:
            self._finish()
            if self.oracle is not None:  # no answer is taken once the engine is gone
                self.oracle.close()
            self.session.close()

    def stop(self) -> None:
        """Ask the child, from any thread, to save and stop; it is killed if it dawdles."""
        self._stopping.set()
        if self.oracle is not None:  # no more answers: a waiting collect returns
            self.oracle.close()
        self._send(Stop())

    def close(self) -> None:
        """Nothing is left to let go of: `run` closed the session when it returned."""

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
                message: Up = conn.recv()
            except (EOFError, OSError):
                raise self._died(process) from None
            oracle = self.oracle
            match message:
                case EngineEvent(event):
                    self._forward(event)
                case Ask(queries):
                    if oracle is not None:
                        oracle.ask(queries)
                case Collect(indices):
                    threading.Thread(target=self._answer, args=(indices,), daemon=True).start()
                case CountUnanswered():
                    self._send(Unanswered(oracle.unanswered() if oracle is not None else 0))
                case Finished(summary):
                    return summary
                case Failed(line):
                    raise SalalError(line)
                case Crashed(trace):
                    raise RuntimeError(f"the engine process failed:\n{trace}")
                case _:
                    assert_never(message)

    def _forward(self, event: Event) -> None:
        if isinstance(event, DataLoaded):
            # The child has just written the decode cache, so this is the warm load.
            self.session.images.load()
        self.emit(event)

    def _answer(self, indices: tuple[int, ...]) -> None:
        """Wait for the person in a thread of its own, then hand the answers down."""
        assert self.oracle is not None  # only a human oracle's child collects
        try:
            answers = self.oracle.collect(indices)
        except OracleClosed:
            return  # stopping: `stop` has told the child already
        self._send(Answers(answers))

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
        # Rank 0 first: it tells the followers the run is over, and they exit with it.
        for process in [self.process, *self.followers]:
            if process is not None and process.pid is not None:
                process.join(timeout=STOP_GRACE)
                if process.is_alive():
                    process.kill()
                    process.join()


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Children started in here have SIGINT blocked for good (a signal mask is inherited): a
    terminal's Ctrl-C reaches its whole process group, and the parent alone decides how the
    engine stops. Here, a SIGINT that comes meanwhile waits until this is over; it is never
    lost, as an ignored one would be."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
