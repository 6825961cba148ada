"""From the engine (the thread that serves its process's pipe) to the app's event loop,
without flooding it."""

from __future__ import annotations

import threading
import time

from textual.app import App
from textual.message import Message

from salal_core.events import Event, StepProgress

STEP_INTERVAL = 0.1  # seconds between forwarded step updates: bars move, the UI stays idle


class EngineEvent(Message):
    """One engine event, delivered on the app's thread."""

    def __init__(self, event: Event) -> None:
        self.event = event
        super().__init__()


class EventBridge:
    """An emit sink for the engine: buffers until the app attaches, then posts messages.

    `post_message` is thread-safe, so the engine never waits for the interface. Step updates
    are thinned to a few a second; every other event goes through.
    """

    def __init__(self) -> None:
        self._app: App | None = None
        self._early: list[Event] = []
        self._lock = threading.Lock()
        self._last_step = 0.0

    def attach(self, app: App) -> None:
        with self._lock:
            self._app = app
            early, self._early = self._early, []
        for event in early:
            app.post_message(EngineEvent(event))

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepProgress):
            now = time.monotonic()
            if now - self._last_step < STEP_INTERVAL and event.step != event.steps:
                return
            self._last_step = now
        with self._lock:
            if self._app is None:
                self._early.append(event)
                return
            app = self._app
        app.post_message(EngineEvent(event))
