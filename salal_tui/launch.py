"""The app as `salal-tui` builds it, for the command and the tests alike: a person labeling
alone joins the run's private service, as any labeler joins a served run; `--auto-oracle`
runs its engine beside the app."""

from __future__ import annotations

import math
import threading
from pathlib import Path

from salal_core.distributed import check_local_ranks
from salal_core.events import ignore
from salal_core.parallel.worker import STOP_GRACE, EngineProcess
from salal_core.run.session import Session
from salal_core.run.summary import RunSummary
from salal_core.runtime import resolve_device
from salal_core.team.hosted import PRIVATE_LOG, HostedRun, log_to_file

from .app import SalalApp
from .bridge import EventBridge
from .desk import JoinedDesk, as_labeler
from .graphics import Drawing

CLOSE_WAIT = STOP_GRACE + 5.0  # seconds a closing app waits for its engine to let go


class PrivateRun:
    """The runner of a person labeling alone: the engine runs in the run's private service,
    which this app's desk joined; it ends with the app."""

    def __init__(self, hosted: HostedRun, desk: JoinedDesk) -> None:
        self.hosted, self.desk = hosted, desk
        self._started, self._returned = threading.Event(), threading.Event()

    @property
    def session(self) -> Session:
        return self.hosted.session

    def run(self) -> RunSummary | None:
        self._started.set()
        try:
            return self.hosted.run()
        finally:
            self._returned.set()

    def stop(self) -> None:
        self.hosted.stop()

    def close(self) -> None:
        """The app has ended: once the engine has let go, so do the desk and the service
        (in that order: the labeler leaves before the socket closes under it)."""
        if self._started.is_set():
            self._returned.wait(CLOSE_WAIT)
        self.desk.stop()
        self.hosted.close()


def label_alone(
    session: Session,
    name: str,
    ranks: int = 1,
    keys_file: Path | None = None,
    drawing: Drawing = "blocks",
) -> SalalApp:
    """A person alone on `session` (a human run), labeling as `name`. A SalalError (no such
    device for `ranks`, no socket) comes before the screen, with the session closed."""
    # No lease lapses: a person alone who steps away finds their images still there.
    log = log_to_file(session.run_dir / PRIVATE_LOG)
    hosted = HostedRun(session, ignore, log, lease_seconds=math.inf, ranks=ranks)
    bridge = EventBridge()
    try:
        carry_on = as_labeler(f"salal-tui --resume {session.run_dir}", name)
        desk = JoinedDesk(session.run_dir, name, bridge, carry_on)
    except BaseException:
        hosted.close()
        raise
    return SalalApp(desk, bridge, False, PrivateRun(hosted, desk), keys_file, drawing)


def watch(
    session: Session, ranks: int = 1, keys_file: Path | None = None, drawing: Drawing = "blocks"
) -> SalalApp:
    """`--auto-oracle` on `session`: the ground truth answers, the engine runs beside. A
    SalalError (no such device for `ranks`) comes before the screen, with the session closed."""
    try:
        check_local_ranks(ranks, resolve_device(session.config.device))
    except BaseException:
        session.close()
        raise
    bridge = EventBridge()
    engine = EngineProcess(session, bridge, ranks=ranks)
    return SalalApp(session, bridge, True, engine, keys_file, drawing)
