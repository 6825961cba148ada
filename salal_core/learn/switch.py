"""Whether a round fine-tunes the network or fits the head alone: cross-validated on its labels.

No one label count suits every folder: on 5,000 photos the head on rotation features is ahead of
fine-tuning up to 40 labels, on the handwritten digits it is behind from 10 (BENCHMARKS.md, "The
head and the switch"). So the round asks its own labels. Each of k folds fits the head on the
other folds' labels, then fine-tunes a copy of the network from that head exactly as the round
would (the same steps, the same carried-over optimizer state); both predict the held-out fold.
The round fine-tunes only if fine-tuning gets at least as many of them right: linear probe, then
fine-tuning (Kumar et al., 2022), kept only where it is not worse than the probe it started from.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from salal_core.config import RunConfig
from salal_core.data import DeviceData
from salal_core.events import Emit, Event, PhaseStarted, StepProgress
from salal_core.learn.frozen import FrozenFeatures, fit_head
from salal_core.learn.model import Net
from salal_core.learn.train import fit, make_optimizer

FOLDS = 3  # each fold costs one round's fine-tuning: three keep the check near 3 rounds' time

# Loss and accuracy of a network on labeled pool positions (the learner's own measure).
Measure = Callable[[Net, FrozenFeatures | None, np.ndarray], tuple[float, float]]


@dataclass(frozen=True)
class SwitchVerdict:
    """How many held-out labels each learner got right over the folds."""

    folds: int
    labels: int
    head_right: int
    finetuned_right: int

    @property
    def fine_tune(self) -> bool:
        """Fine-tuning is kept where it is not worse than the head it starts from."""
        return self.finetuned_right >= self.head_right

    def describe(self, round_: int) -> str:
        kept = "fine-tuning the network" if self.fine_tune else "the head on frozen features"
        return (
            f"round {round_}: {self.folds}-fold cross-validation on {self.labels} labels: "
            f"fine-tuned {self.finetuned_right} right, head {self.head_right}: {kept}"
        )


def folds_of(classes: np.ndarray, folds: int) -> np.ndarray:
    """Each label's fold (0..folds-1): class by class, in position order, dealt round-robin, so
    every class spreads over the folds and the split is the same on every rank and resume."""
    order = np.argsort(classes, kind="stable")
    fold = np.empty(len(classes), dtype=np.int64)
    fold[order] = np.arange(len(classes)) % folds
    return fold


def cross_validate(
    model: Net,
    frozen: FrozenFeatures,
    optimizer: torch.optim.Optimizer,
    data: DeviceData,
    config: RunConfig,
    indices: np.ndarray,
    labels: np.ndarray,
    round_: int,
    generator: torch.Generator,
    measure: Measure,
    emit: Emit,
) -> SwitchVerdict:
    """Fold by fold, the head and the head-then-fine-tuned network on a copy of `model` (which
    is left as it was), each judged on the labels it did not see. `frozen` holds `model`'s
    features. Progress goes to `emit`; the folds' epochs do not (they are not the round's)."""
    active = config.active
    folds = min(FOLDS, len(indices))
    fold = folds_of(labels[indices], folds)
    device = data.device
    all_targets = torch.from_numpy(labels).to(device)
    head_right = finetuned_right = 0

    def progress(event: Event) -> None:
        if isinstance(event, PhaseStarted | StepProgress):
            emit(event)

    for k in range(folds):
        train, held = indices[fold != k], indices[fold == k]
        trial = copy.deepcopy(model)
        positions = torch.from_numpy(train).to(device)
        fit_head(trial, frozen, data, positions, all_targets[positions], generator)
        head_right += round(measure(trial, frozen, held)[1] * len(held))
        trial_optimizer = make_optimizer(trial, active.optim)
        trial_optimizer.load_state_dict(optimizer.state_dict())
        fit(
            trial,
            data,
            positions,
            all_targets,
            active.optim,
            active.epochs_per_round,
            phase="finetune",
            round_=round_,
            evaluate_fn=lambda: (float("nan"), float("nan")),
            emit=progress,
            generator=generator,
            optimizer=trial_optimizer,
            on_collapse="warn",
        )
        finetuned_right += round(measure(trial, None, held)[1] * len(held))
    return SwitchVerdict(folds, len(indices), head_right, finetuned_right)
