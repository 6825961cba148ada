"""What runs in the app's engine processes (worker.py starts them): rank 0 on the pipe to the
app, and with `salal-tui --ranks N`, the ranks that follow it.

The child on the pipe rebuilds the parent's engine from the run directory (the parent holds
its lock, and has applied and saved the configuration), sends events, `ask` and `collect` up,
and takes answers and `stop` from below. Its output goes to the run's engine.log: the terminal
belongs to the app.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import assert_never

from salal_core import distributed
from salal_core.config import RunConfig
from salal_core.config_io import load_toml
from salal_core.errors import OracleClosed, SalalError
from salal_core.events import Event, OracleName, Query, fan_out
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
from salal_core.run import group
from salal_core.run.engine import Engine
from salal_core.run.session import RunRequest
from salal_core.run.store import RunStore
from salal_core.runtime import resolve_device

LOG_NAME = "engine.log"  # the child's stdout and stderr: the terminal belongs to the app
LOCAL_GROUP_TIMEOUT = 7 * 24 * 3600.0  # seconds: `salal-tui --ranks`, see _join


@dataclass(frozen=True)
class ChildSpec:
    """What the child needs to rebuild the parent's engine from its run directory."""

    request: RunRequest
    niceness: int
    parent_pid: int
    group: dict[str, str]  # the torchrun variables of its rank (empty: a world of one)


class RemoteOracle:
    """The child's oracle: forwards `ask` and `collect` to the parent's oracle over the pipe."""

    name: OracleName = "human"

    def __init__(self, send: Callable[[Up], None]) -> None:
        self._send = send
        self._answers: queue.Queue[dict[int, int] | None] = queue.Queue()
        self._counts: queue.Queue[int | None] = queue.Queue()
        self._closed = False

    def ask(self, queries: Sequence[Query]) -> None:
        self._send(Ask(tuple(queries)))

    def collect(self, indices: Sequence[int]) -> dict[int, int]:
        if self._closed:
            raise OracleClosed()
        self._send(Collect(tuple(int(i) for i in indices)))
        answers = self._answers.get()
        if answers is None:
            raise OracleClosed()
        return answers

    def unanswered(self) -> int:
        """Asked of the parent's oracle, which holds the person's queue (0 once closed)."""
        if self._closed:
            return 0
        self._send(CountUnanswered())
        count = self._counts.get()
        return 0 if count is None else count

    def deliver(self, answers: dict[int, int]) -> None:
        self._answers.put(answers)

    def deliver_count(self, count: int) -> None:
        self._counts.put(count)

    def close(self) -> None:
        self._closed = True
        self._answers.put(None)
        self._counts.put(None)


def child_main(conn: Connection, spec: ChildSpec) -> None:
    _detach(spec)
    send_lock = threading.Lock()

    def send(message: Up) -> None:
        with send_lock:
            conn.send(message)

    def forward(event: Event) -> None:
        try:
            send(EngineEvent(event))
        except (BrokenPipeError, OSError):
            raise OracleClosed() from None  # the app is gone: stop as if the person quit

    remote = RemoteOracle(send) if spec.request.oracle == "human" else None
    try:
        # The parent holds the run's lock, and has applied and saved the configuration.
        store = RunStore(spec.request.run_dir, create=False, lock=False)
        config = store.load_config()
        _join(spec, config)
        engine = Engine(config, store, spec.request, fan_out(store.on_event, forward), remote)
        threading.Thread(target=_listen, args=(conn, engine, remote), daemon=True).start()
        result: Up = Finished(engine.run())
        in_step = group.finish(0)
    except SalalError as exc:
        in_step = group.finish(2)
        result = Failed(str(exc))
    except BaseException:
        in_step = False
        traceback.print_exc()
        result = Crashed(traceback.format_exc())
    finally:
        distributed.leave(in_step)
    with contextlib.suppress(BrokenPipeError, OSError):  # the app is gone: nobody to tell
        send(result)
    conn.close()


def follower_main(spec: ChildSpec) -> None:
    """Ranks 1 to N - 1: follow rank 0 until the run is over. Errors go to the run's log;
    rank 0 tells the app."""
    _detach(spec)
    in_step = False
    try:
        world = _join(spec, load_toml(spec.request.run_dir / "config.toml"))
        group.follow(world)
        in_step = True
    except BaseException:
        traceback.print_exc()
    finally:
        distributed.leave(in_step)


def _join(spec: ChildSpec, config: RunConfig) -> distributed.World:
    os.environ.update(spec.group)
    # The followers wait on rank 0 while a person thinks, for as long as that takes; the
    # group is local and dies with the app, so a long wait cannot outlive it.
    return distributed.join(resolve_device(config.device), timeout=LOCAL_GROUP_TIMEOUT)


def _listen(conn: Connection, engine: Engine, remote: RemoteOracle | None) -> None:
    """Answers and `stop` from the parent; a closed pipe means the parent is gone."""
    while True:
        try:
            message: Down = conn.recv()
        except (EOFError, OSError):
            message = Stop()
        match message:
            case Answers(answers):
                if remote is not None:
                    remote.deliver(answers)
            case Unanswered(count):
                if remote is not None:
                    remote.deliver_count(count)
            case Stop():
                engine.stop()
                return
            case _:
                assert_never(message)


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
