"""From the engine (the thread that serves its process's pipe) to the app's event loop: one
typed Textual message per kind of engine event, without flooding the app."""

from __future__ import annotations

import threading
import time
from typing import Any, Generic, TypeVar

from textual.message import Message
from textual.message_pump import MessagePump

from salal_core.events import (
    DataLoaded,
    EmbeddingProgress,
    EpochEnded,
    Event,
    LabeledCount,
    LabelsAdded,
    Notice,
    PhaseChanged,
    PhaseStarted,
    QueryReady,
    RoundEnded,
    RunFinished,
    StepProgress,
)

STEP_INTERVAL = 0.1  # seconds between forwarded step updates: bars move, the UI stays idle

E = TypeVar("E", bound=Event)


class EngineMessage(Message, Generic[E]):
    """One engine event, delivered on the app's thread; subclasses name the kind."""

    def __init__(self, event: E) -> None:
        self.event = event
        super().__init__()


class DataLoadedMessage(EngineMessage[DataLoaded]): ...


class PhaseChangedMessage(EngineMessage[PhaseChanged]): ...


class PhaseStartedMessage(EngineMessage[PhaseStarted]): ...


class EmbeddingProgressMessage(EngineMessage[EmbeddingProgress]): ...


class StepProgressMessage(EngineMessage[StepProgress]): ...


class EpochEndedMessage(EngineMessage[EpochEnded]): ...


class QueryReadyMessage(EngineMessage[QueryReady]): ...


class LabelsAddedMessage(EngineMessage[LabelsAdded]): ...


class RoundEndedMessage(EngineMessage[RoundEnded]): ...


class LabeledCountMessage(EngineMessage[LabeledCount]): ...


class NoticeMessage(EngineMessage[Notice]): ...


class RunFinishedMessage(EngineMessage[RunFinished]): ...


MESSAGES: dict[type[Event], type[EngineMessage[Any]]] = {
    DataLoaded: DataLoadedMessage,
    PhaseChanged: PhaseChangedMessage,
    PhaseStarted: PhaseStartedMessage,
    EmbeddingProgress: EmbeddingProgressMessage,
    StepProgress: StepProgressMessage,
    EpochEnded: EpochEndedMessage,
    QueryReady: QueryReadyMessage,
    LabelsAdded: LabelsAddedMessage,
    RoundEnded: RoundEndedMessage,
    LabeledCount: LabeledCountMessage,
    Notice: NoticeMessage,
    RunFinished: RunFinishedMessage,
}


def message_for(event: Event) -> EngineMessage[Any]:
    return MESSAGES[type(event)](event)


class EventBridge:
    """An emit sink for the engine: buffers until a target attaches, then posts messages.

    `post_message` is thread-safe, so the engine never waits for the interface. Step updates
    are thinned to a few a second; every other event goes through. Messages bubble from the
    target (the labeling screen) to the app, which handles the end of the run.
    """

    def __init__(self) -> None:
        self._target: MessagePump | None = None
        self._early: list[Event] = []
        self._lock = threading.Lock()
        self._last_step = 0.0

    def attach(self, target: MessagePump) -> None:
        with self._lock:
            self._target = target
            early, self._early = self._early, []
        for event in early:
            target.post_message(message_for(event))

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepProgress):
            now = time.monotonic()
            if now - self._last_step < STEP_INTERVAL and event.step != event.steps:
                return
            self._last_step = now
        with self._lock:
            if self._target is None:
                self._early.append(event)
                return
            target = self._target
        target.post_message(message_for(event))
