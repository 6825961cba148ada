"""Frozen event dataclasses the engine emits; the CLI, the app and the tests are sinks of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from salal_core.run.summary import RunSummary

# What the engine is busy with; the app and the progress bars say it in words of their own.
Phase = Literal["loading", "embedding", "pretrain", "training", "scoring", "waiting"]
TrainingPhase = Literal["pretrain", "finetune"]
# Who gave a label: the preset's starting set, the ground truth, a person's key, the model's
# guess a person accepted in bulk (the grid's accept key), or an imported file.
OracleName = Literal["initial", "auto", "human", "accepted", "imported"]
ORACLE_NAMES: tuple[OracleName, ...] = ("initial", "auto", "human", "accepted", "imported")
NoticeLevel = Literal["info", "warning"]


@dataclass(frozen=True)
class Event:
    """Base class of everything the engine reports."""


@dataclass(frozen=True)
class DataLoaded(Event):
    source: str
    train_size: int
    test_size: int
    class_names: tuple[str, ...]
    seconds: float
    from_cache: bool
    skipped: int = 0


@dataclass(frozen=True)
class PhaseChanged(Event):
    """The engine moved to another kind of work: pretraining, training, scoring, waiting."""

    phase: Phase
    detail: str = ""


@dataclass(frozen=True)
class EmbeddingProgress(Event):
    """The pretrained backbone's one pass over the images (backbones/embed.py): `done` of
    `total` images after `seconds`."""

    backbone: str
    done: int
    total: int
    seconds: float


@dataclass(frozen=True)
class PhaseStarted(Event):
    """A training phase of `epochs` epochs begins (pretraining, or one fine-tuning round)."""

    phase: TrainingPhase
    round: int
    epochs: int
    steps_per_epoch: int


@dataclass(frozen=True)
class StepProgress(Event):
    """Emitted every few steps so that progress bars move inside long epochs."""

    phase: TrainingPhase
    epoch: int
    step: int
    steps: int


@dataclass(frozen=True)
class EpochEnded(Event):
    phase: TrainingPhase
    round: int
    epoch: int
    epochs: int
    loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    images_per_second: float
    seconds: float

    @classmethod
    def head_fit(
        cls,
        round_: int,
        fit: tuple[float, float],
        held_out: tuple[float, float],
        images: int,
        seconds: float,
    ) -> EpochEnded:
        """A round that fit a linear head alone: one epoch of fine-tuning, as the charts read
        it. `fit` and `held_out` are (loss, accuracy)."""
        rate = images / max(seconds, 1e-9)
        return cls("finetune", round_, 1, 1, *fit, *held_out, rate, seconds)


@dataclass(frozen=True)
class Query:
    """One pool item the engine asks about, with what the model currently thinks of it.

    `index` is its position in the loaded data (what the app draws); `item` is the run's
    stable id for the image (what the journal records), whatever positions do on resume."""

    index: int
    item: int
    score: float
    predicted: int
    probabilities: tuple[float, ...]
    round: int

    @property
    def cold_start(self) -> bool:
        """Asked before any model existed, with no guess to show (the engine asks those with
        uniform probabilities): chosen from the pretrained features, or, with a score of 0,
        a seeded sample asked while the backbone was still pretraining."""
        return self.round == 0 and len(set(self.probabilities)) == 1


@dataclass(frozen=True)
class QueryReady(Event):
    round: int
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class LabelsAdded(Event):
    round: int
    indices: tuple[int, ...]
    labels: tuple[int, ...]
    oracle: OracleName
    labeled: int
    target: int


@dataclass(frozen=True)
class RoundEnded(Event):
    round: int
    labeled: int
    target: int
    test_accuracy: float
    pool_size: int
    gained: float  # accuracy minus the round before's (NaN for the first round)
    kappa: float  # agreement with the round before's predictions (NaN: none; stability.py)
    head_input: str = ""  # what the round's head read: a backbone, rotnet, pixels, or "a+b"


@dataclass(frozen=True)
class LabeledCount(Event):
    """The run's labeled count now, as its service tells every labeler: what the engine has
    taken, and the answers it has not taken yet, everybody's; and the last round finished."""

    labeled: int
    round: int


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should read (a warning about the recipe, a skipped file, ...)."""

    message: str
    level: NoticeLevel = "warning"


@dataclass(frozen=True)
class RunFinished(Event):
    summary: RunSummary


Emit = Callable[[Event], None]
E = TypeVar("E", bound=Event)


def fan_out(*sinks: Emit) -> Emit:
    """One emit callable that feeds several sinks (the run store, then the UI or progress bars)."""

    def emit(event: Event) -> None:
        for sink in sinks:
            sink(event)

    return emit


def ignore(event: Event) -> None:
    """An emit sink that drops everything (for library use without a UI)."""


class Recorder:
    """An emit sink that keeps every event; used by tests and by `compare`."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]
