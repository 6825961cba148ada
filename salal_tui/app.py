"""The Textual app: starts the engine beside the interface; the labeling screen renders its
events and the app shows the summary when the run finishes.

`runner` is what runs the engine (launch.py): the private service of a person labeling alone,
the served run a labeler joined, or with `--auto-oracle` an `EngineProcess` beside the app.
Training is always in a process of its own, so it never holds this one's interpreter lock.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Protocol

from textual import events, on, work
from textual.app import App
from textual.worker import Worker, WorkerState

from salal_core.errors import SalalError
from salal_core.parallel.spawning import prepare_to_spawn
from salal_core.run.session import Session
from salal_core.run.summary import RunSummary

from .bridge import EventBridge, RunFinishedMessage
from .desk import Desk, LocalDesk
from .graphics import Drawing
from .screens import LabelScreen, SummaryScreen
from .widgets import PhaseLine

FULL_GC_CHECK = 0.25  # seconds between looks at whether a full collection is due
FULL_GC_IDLE = 0.3  # seconds without a key that count as a pause
FULL_GC_FORCE = 100  # collect anyway after this many postponements' worth (non-stop typing)


class Runner(Protocol):
    def run(self) -> RunSummary | None:
        """Run (or wait on) the engine until the run ends or `stop`; blocks."""

    def stop(self) -> None:
        """Ask the engine to save and stop, from any thread."""

    def close(self) -> None:
        """The app has ended: let go of whatever else the runner holds."""


class SalalApp(App[RunSummary | None]):
    CSS_PATH = "salal.tcss"
    TITLE = "salal"

    def __init__(
        self,
        run: Session | Desk,
        bridge: EventBridge,
        auto: bool,
        runner: Runner | None = None,
        keys_file: Path | None = None,
        drawing: Drawing = "blocks",
    ) -> None:
        """`run`: a run this app holds (its session), or a served run it joined (a desk);
        `runner` None: events come from elsewhere (the snapshot tests feed the bridge);
        `drawing`: how images are drawn, as `graphics.choose_drawing` found before the start."""
        super().__init__()
        prepare_to_spawn()  # the review's probes spawn a process from inside the app
        self.desk = LocalDesk(run) if isinstance(run, Session) else run
        self.bridge, self.auto, self.runner = bridge, auto, runner
        self.label_screen = LabelScreen(self.desk, auto, keys_file, drawing)
        self.error: str | None = None
        self.quitting = False
        self.last_input = 0.0
        self._gc_threshold = gc.get_threshold()

    @property
    def session(self) -> Session:
        """The session of a run this app holds (not of a joined one)."""
        assert isinstance(self.desk, LocalDesk), "a joined run has no session here"
        return self.desk.session

    def on_mount(self) -> None:
        self.push_screen(self.label_screen)
        self.bridge.attach(self.label_screen)  # its messages bubble up here
        self._defer_full_collections()
        if self.runner is not None:
            self.run_engine()

    def on_unmount(self) -> None:
        if self.runner is not None:  # however the app ends (a crash, a failed test), stop it
            self.runner.stop()
            self.runner.close()
        gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.last_input = time.monotonic()
        await super().on_event(event)

    def _defer_full_collections(self) -> None:
        """Keep Python's full garbage collections out of keypresses.

        Every image drawn leaves a few thousand objects in reference cycles (Textual's strips
        cache themselves), and a full collection over them stalls the app for 100-300 ms on a
        small CPU: one keypress in fifteen, measured. So: freeze what is loaded by now (never
        scanned again), leave the cheap young-generation collections alone, and run the full
        ones when the person pauses.
        """
        gc.freeze()
        young, middle, _ = self._gc_threshold
        gc.set_threshold(young, middle, 1_000_000_000)
        self.set_interval(FULL_GC_CHECK, self._collect_when_idle)

    def _collect_when_idle(self) -> None:
        pending = gc.get_count()[2]  # middle-generation collections since the last full one
        idle = time.monotonic() - self.last_input > FULL_GC_IDLE
        if pending >= self._gc_threshold[2] and (idle or pending >= FULL_GC_FORCE):
            gc.collect()

    @work(thread=True, exit_on_error=False, name="engine")
    def run_engine(self) -> RunSummary | None:
        """Runs (or waits on) the engine beside the event loop; it only ever posts messages."""
        assert self.runner is not None
        return self.runner.run()

    @on(RunFinishedMessage)
    def show_summary(self, message: RunFinishedMessage) -> None:
        if not self.quitting:
            self.push_screen(SummaryScreen(message.event.summary))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "engine":
            return
        if event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED) and self.quitting:
            self.exit(None)  # the engine has saved and stopped, and let go of the run
            return
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, SalalError):
            self.error = str(error)
            self.exit(None, return_code=2)
        elif error is not None:
            raise error  # a bug: let Textual show the traceback

    @on(LabelScreen.KeysRefused)
    def keys_refused(self, message: LabelScreen.KeysRefused) -> None:
        self.error = message.reason
        if self.runner is not None:
            self.runner.stop()
        self.exit(None, return_code=2)

    @on(LabelScreen.QuitConfirmed)
    def stop_and_exit(self) -> None:
        """Quit: answers are on disk already; exit once the engine has stopped at its next
        step (seconds at most), so the run directory is released when the app is gone."""
        self.quitting = True
        if self.runner is not None:
            self.runner.stop()
        engine = [w for w in self.workers if w.name == "engine" and not w.is_finished]
        if engine:
            self.label_screen.query_one(PhaseLine).show("saving and stopping…")
        else:
            self.exit(None)
