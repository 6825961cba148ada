"""The Textual app: starts the engine in a worker thread and routes its events to the screens."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import App
from textual.worker import Worker, WorkerState

from salal_core.errors import SalalError
from salal_core.events import RunFinished
from salal_core.factory import Engine

from .bridge import EngineEvent, EventBridge
from .screens import LabelScreen, SummaryScreen


class SalalApp(App[dict[str, Any] | None]):
    CSS_PATH = "salal.tcss"
    TITLE = "salal"

    def __init__(
        self, engine: Engine, bridge: EventBridge, auto: bool, start_engine: bool = True
    ) -> None:
        super().__init__()
        self.engine, self.bridge, self.auto = engine, bridge, auto
        self.start_engine = start_engine  # False: events come from elsewhere (snapshot tests)
        self.label_screen = LabelScreen(engine, auto)
        self.error: str | None = None

    def on_mount(self) -> None:
        self.push_screen(self.label_screen)
        self.bridge.attach(self)
        if self.start_engine:
            self.run_engine()

    @work(thread=True, exit_on_error=False, name="engine")
    def run_engine(self) -> dict[str, Any]:
        """The engine trains here, beside the event loop; it only ever posts messages."""
        return self.engine.run()

    @on(EngineEvent)
    def route(self, message: EngineEvent) -> None:
        event = message.event
        self.label_screen.handle(event)
        if isinstance(event, RunFinished):
            self.push_screen(SummaryScreen(event.summary))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "engine" or event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, SalalError):
            self.error = str(error)
            self.exit(None, return_code=2)
        else:
            raise error  # a bug: let Textual show the traceback

    def stop_and_exit(self) -> None:
        """Quit: answers are on disk already; the engine stops at its next step."""
        self.engine.stop()
        self.exit(None)
