"""A run held as a service: its session (the lock and journal), the queue its labelers share,
the socket they join on, and the engine, started together and stopped together.

`salal-core serve` holds one in the foreground until it is stopped; a lone `salal-tui` holds
a private one for its own app, which joins it as any labeler does (and ends it on quitting),
so there is one way to label a run, alone or not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from salal_core.distributed import check_local_ranks
from salal_core.events import Emit, fan_out
from salal_core.parallel.worker import EngineProcess
from salal_core.run.session import Session
from salal_core.run.summary import RunSummary
from salal_core.runtime import resolve_device
from salal_core.team.endpoint import Admission
from salal_core.team.leases import TeamQueue
from salal_core.team.service import RunService

PRIVATE_LOG = "service.log"  # a private service's lines: the terminal belongs to the app


class HostedRun:
    def __init__(
        self,
        session: Session,
        emit: Emit,
        log: Callable[[str], None],
        *,
        overlap: int | None = None,
        lease_seconds: float = 300.0,
        socket_group: bool = False,
        ranks: int = 1,
    ) -> None:
        """Take the session over and listen; the engine starts with `run`. `emit` hears the
        engine beside the labelers; `overlap` None keeps the run's own. A SalalError (no
        such device for `ranks`, a socket that cannot be made) closes the session first."""
        self.session = session
        store = session.store
        try:
            check_local_ranks(ranks, resolve_device(session.config.device))
            if overlap is not None:
                store.questions.set_overlap(overlap)
            self.queue = TeamQueue(store, store.questions.overlap, lease_seconds)
            group = os.stat(session.run_dir).st_gid if socket_group else None
            self.service = RunService(
                session.run_dir,
                session.config,
                self.queue,
                session.images,
                self.class_names,
                Admission(os.getuid(), group),
                log,
            )
            self.engine = EngineProcess(
                session, fan_out(emit, self.service.on_event), ranks=ranks, oracle=self.queue
            )
            self.socket_path = self.service.start(socket_group)
        except BaseException:
            session.close()
            raise

    def class_names(self) -> tuple[str, ...]:
        """The run's classes: the data's own once loaded, else --classes or the stored ones."""
        loaded = self.session.images.loaded
        if loaded is not None:
            return tuple(loaded.class_names)
        return self.session.request.class_names or tuple(self.session.store.class_names())

    def run(self) -> RunSummary | None:
        """Run the engine until the run ends or `stop` (blocks; the session is closed after)."""
        return self.engine.run()

    def stop(self) -> None:
        """The engine saves and stops at its next step; no answer is taken after this."""
        self.engine.stop()

    def close(self) -> None:
        """Stop listening, let go of every labeler still connected, and of the run (once
        `run` has returned, or where it never started)."""
        self.service.close()
        self.session.close()


def log_to_file(path: Path) -> Callable[[str], None]:
    """A private service's log: one timestamped line at a time, appended to `path`."""

    def log(line: str) -> None:
        with path.open("a", encoding="utf-8") as out:
            out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    return log
