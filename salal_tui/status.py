"""What the screen says about the engine, as pure functions of its events: the phase line,
what the last rounds gained, and why an answer was not saved."""

from __future__ import annotations

import math

from salal_core.errors import SalalError
from salal_core.events import EmbeddingProgress, EpochEnded, PhaseChanged, StepProgress

NOT_SAVED_ADVICE = (
    "free some disk space and press the key again; every answer before this one is saved"
)


def phase_text(event: PhaseChanged, person: bool) -> str:
    if event.phase == "waiting":
        return "model is waiting for your answers" if person else "waiting for the oracle"
    return f"{event.phase}: {event.detail}"


def step_text(event: StepProgress, round_: int, seconds_left: float | None = None) -> str:
    """The top line inside a training phase, with the time it has left once it can tell."""
    what = "pretraining" if event.phase == "pretrain" else f"round {round_} training"
    text = f"{what} · epoch {event.epoch} · step {event.step}/{event.steps}"
    if seconds_left is not None and math.isfinite(seconds_left):
        minutes, seconds = divmod(round(seconds_left), 60)
        text += f" · {minutes}:{seconds:02d} left"
    return text


def seconds_left(elapsed: float, done: int, total: int) -> float | None:
    """The phase's time left at its pace so far (None before its first step is done)."""
    return elapsed / done * max(0, total - done) if done > 0 else None


def embedding_text(event: EmbeddingProgress) -> str:
    """The top line while the pretrained backbone reads every image once."""
    text = f"{event.backbone} features · {event.done:,}/{event.total:,} images"
    left = seconds_left(event.seconds, event.done, event.total)
    if left is not None and math.isfinite(left):
        minutes, seconds = divmod(round(left), 60)
        text += f" · {minutes}:{seconds:02d} left"
    return text


def epoch_text(event: EpochEnded) -> str:
    what = "pretraining" if event.phase == "pretrain" else f"round {event.round} training"
    return (
        f"{what} · epoch {event.epoch}/{event.epochs} · loss {event.loss:.3f} · "
        f"{event.images_per_second:,.0f} img/s"
    )


def gains_text(gains: list[float], kappa: float = math.nan, head_input: str = "") -> str:
    """What the last rounds added to accuracy, in points, how much the last round's
    predictions moved (Cohen's kappa with the round before), and what the head reads where it
    is not the run's own rotation network; "" before the first round."""
    parts = [f"head on {head_input}"] if head_input not in ("", "rotnet") else []
    if gains:
        parts.append("gained " + " ".join(f"{100 * g:+.1f}" for g in gains) + " pts")
    if not math.isnan(kappa):
        parts.append(f"kappa {kappa:.3f}")
    return " · ".join(parts)


def not_saved_text(exc: SalalError) -> str:
    reason = str(exc).split(";")[0].removeprefix("could not save to the run directory ")
    return f"NOT SAVED {reason}: {NOT_SAVED_ADVICE}"
