"""What watches a training phase: its time estimate, the collapse rule and divergence.

A phase is told in steps, so the bars follow the optimizer and not the folder's size; a phase
expected to take an hour is announced with what shortens it; a phase whose every epoch sits at
a uniform guess is collapsed; a loss that is not finite stops the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from salal_core.config import OptimConfig
from salal_core.errors import Collapsed, Diverged
from salal_core.events import Emit, Notice, StepProgress, TrainingPhase


@dataclass(frozen=True)
class EpochStats:
    """One epoch's figures: training reports them, and the watch judges them."""

    loss: float
    accuracy: float
    images: int  # images the network saw, rotations counted
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


LONG_PHASE = 3600.0  # seconds: a phase expected to run longer is announced, with the remedy
ESTIMATE_AFTER = 5  # steps timed before the estimate
COLLAPSED_EPOCHS = 2  # epochs in a row at a uniform guess, after the warm-up, that stop a run
# Optimizer steps a phase takes before it can be judged collapsed: a handful of steps on a few
# images sits near ln(classes) because it has barely moved, not because it fell into a minimum.
COLLAPSE_MIN_STEPS = 100
# What a collapse does: headless, the run stops (a script reads why); in a person's session it
# is said on screen and training carries on, so that no label a person gives is stranded.
CollapseRule = Literal["stop", "warn"]


def long_phase(phase: TrainingPhase, seconds: float) -> str:
    """What to tell a person before an hour-long wait: how long, and what shortens it."""
    hours, minutes = divmod(round(seconds / 60), 60)
    if phase == "pretrain":
        what, shorter = (
            "rotation pretraining",
            "--pretrain-epochs N, --train-limit N or --preset cpu",
        )
    else:
        what, shorter = "this round's training", "--epochs-per-round N or a smaller --query-size"
    return (
        f"{what} will take about {hours} h {minutes:02d} min at this speed; {shorter} shortens it"
    )


def at_uniform(stats: EpochStats, classes: int) -> bool:
    """A whole epoch at the loss of a uniform guess, ln(classes) (within 2%), at chance
    accuracy: every image gets the same guess."""
    near = abs(stats.loss - math.log(classes)) < 0.02 * math.log(classes)
    return near and stats.accuracy < 1 / classes + 0.02


def other_recipe(device: torch.device) -> str:
    """The preset to name in advice: one this machine can run."""
    return " or use --preset fast" if device.type == "cuda" else " or use --preset cpu"


class StepReporter:
    """Step progress for the bars (about 20 updates an epoch), and after the first few steps
    the phase's time estimate, said once if it runs past an hour."""

    def __init__(self, phase: TrainingPhase, epochs: int, steps: int, emit: Emit) -> None:
        self.phase, self.epochs, self.steps, self.emit = phase, epochs, steps, emit
        self.every = max(1, steps // 20)
        self.started = time.perf_counter()

    def in_epoch(self, epoch: int) -> Callable[[int, int], None]:
        def on_step(step: int, total: int) -> None:
            if epoch == 1 and step == min(ESTIMATE_AFTER, total):
                elapsed = time.perf_counter() - self.started
                estimate = elapsed / step * total * self.epochs
                if estimate > LONG_PHASE:
                    self.emit(Notice(long_phase(self.phase, estimate)))
            if step % self.every == 0 or step == total:
                self.emit(StepProgress(self.phase, epoch, step, total))

        return on_step


class CollapseWatch:
    """Counts the epochs in a row at a uniform guess, past the warm-up (the rate is still
    climbing from zero there) and past the minimum steps; at `COLLAPSED_EPOCHS` it stops the
    phase, or under the "warn" rule says so once."""

    def __init__(
        self,
        phase: TrainingPhase,
        classes: int,
        cfg: OptimConfig,
        epochs: int,
        steps: int,
        device: torch.device,
        rule: CollapseRule,
    ) -> None:
        self.phase, self.classes, self.cfg, self.steps = phase, classes, cfg, steps
        self.device, self.rule = device, rule
        self.warm = cfg.warmup * epochs
        self.uniform, self.warned = 0, False

    def judge(self, epoch: int, stats: EpochStats) -> str | None:
        """The notice to show, if this epoch completes a collapse under the "warn" rule."""
        judged = epoch > self.warm and epoch * self.steps >= COLLAPSE_MIN_STEPS
        self.uniform = self.uniform + 1 if judged and at_uniform(stats, self.classes) else 0
        if self.uniform < COLLAPSED_EPOCHS or self.warned:
            return None
        # Every image gets the same uniform guess: scoring would rank noise, and more epochs
        # will not leave this flat minimum. Seen with Adam at 0.3 (the write-up's).
        since = epoch - self.uniform + 1
        said = (
            f"{self.phase} collapsed: from epoch {since} the loss sits at ln {self.classes} "
            f"({stats.loss:.3f}) and accuracy at chance ({stats.accuracy:.3f}) with "
            f"{self.cfg.optimizer} at lr {self.cfg.lr}; lower it with --lr (a new run, or "
            f"--resume to keep the labels){other_recipe(self.device)}"
        )
        if self.rule == "stop":
            raise Collapsed(said)
        self.warned = True
        return f"{said}; labeling carries on"


def refuse_divergence(
    stats: EpochStats, phase: TrainingPhase, cfg: OptimConfig, device: torch.device
) -> None:
    """Weights that are NaN score every image alike and predict nothing: stop the run rather
    than go on asking for labels with them. Every answer is already saved."""
    if not math.isfinite(stats.loss):
        raise Diverged(
            f"{phase} diverged (loss {stats.loss}) with {cfg.optimizer} at lr {cfg.lr}; "
            "lower it with --lr (a new run, or --resume to keep the labels)"
            f"{other_recipe(device)}"
        )
