"""What crosses the pipe between the app's process and its engine process, one frozen
dataclass per message, so that each side dispatches on types that mypy checks, not on strings.

Up (engine to app): events, the oracle's `ask`, `collect` and `unanswered`, and how the run
ended. Down (app to engine): answers, the unanswered count, and `stop`.
"""

from __future__ import annotations

from dataclasses import dataclass

from salal_core.events import Event, Query
from salal_core.run.summary import RunSummary


@dataclass(frozen=True)
class EngineEvent:
    event: Event


@dataclass(frozen=True)
class Ask:
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class Collect:
    """Wait for the person's answers to these positions."""

    indices: tuple[int, ...]


@dataclass(frozen=True)
class CountUnanswered:
    """How many asked images the person has not answered yet."""


@dataclass(frozen=True)
class Finished:
    summary: RunSummary


@dataclass(frozen=True)
class Failed:
    """A SalalError: the one line the person sees."""

    message: str


@dataclass(frozen=True)
class Crashed:
    """A bug in the engine; its traceback is in the run's log too."""

    traceback: str


@dataclass(frozen=True)
class Answers:
    answers: dict[int, int]


@dataclass(frozen=True)
class Unanswered:
    count: int


@dataclass(frozen=True)
class Stop:
    pass


Up = EngineEvent | Ask | Collect | CountUnanswered | Finished | Failed | Crashed
Down = Answers | Unanswered | Stop
