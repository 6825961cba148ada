"""Whether a round fine-tunes the network or fits the head alone: cross-validated on its labels.

No one label count suits every folder: on 5,000 photos the head on rotation features is ahead of
fine-tuning up to 40 labels, on the handwritten digits it is behind from 10 (BENCHMARKS.md, "The
head and the switch"). So the round asks its own labels. Each of k folds fits the head on the
other folds' labels, then fine-tunes a copy of the network from that head exactly as the round
would (the same steps, the same carried-over optimizer state); both predict the held-out fold.
The round fine-tunes only if fine-tuning gets at least as many of them right: linear probe, then
fine-tuning (Kumar et al., 2022), kept only where it is not worse than the probe it started from.

The heads are cheap, so all of them come first; the fine-tuned copies, which cost a round's
training each, stop as soon as the rest could not change the verdict (with one label a class,
none is needed). The same verdict, sooner.
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

FOLDS = 3  # each fine-tuned fold costs one round's training: the check costs at most three

# Loss and accuracy of a network on labeled pool positions (the learner's own measure).
Measure = Callable[[Net, FrozenFeatures | None, np.ndarray], tuple[float, float]]


@dataclass(frozen=True)
class SwitchVerdict:
    """How many held-out labels each learner got right: the heads over every fold, the
    fine-tuned copies over the first `finetuned_folds` (the rest could not change the verdict)."""

    folds: int
    labels: int
    head_right: int
    finetuned_right: int
    finetuned_folds: int

    @property
    def fine_tune(self) -> bool:
        """Fine-tuning is kept where it is not worse than the head it starts from."""
        return self.finetuned_right >= self.head_right

    def describe(self, round_: int) -> str:
        kept = "fine-tuning the network" if self.fine_tune else "the head on frozen features"
        if self.finetuned_folds == self.folds:
            tuned = f"fine-tuned {self.finetuned_right}"
        elif self.finetuned_folds == 0:
            tuned = "no fine-tuned copy needed"
        else:
            tuned = f"fine-tuned {self.finetuned_right} in {self.finetuned_folds} folds, enough"
        return (
            f"round {round_}: {self.folds}-fold cross-validation on {self.labels} labels: "
            f"head {self.head_right} right, {tuned}: {kept}"
        )


def settled(head_right: int, finetuned_right: int, unseen: int) -> bool:
    """Whether the verdict is known with `unseen` held-out labels still to fine-tune for:
    fine-tuning already matches the heads' total, or could not reach it with all of them."""
    return finetuned_right >= head_right or finetuned_right + unseen < head_right


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
    """On copies of `model` (which is left as it was), the head on every fold, then the
    head-then-fine-tuned network fold by fold until the verdict is settled, each judged on the
    labels it did not see. `frozen` holds `model`'s features. Progress goes to `emit`; the
    folds' epochs do not (they are not the round's)."""
    active = config.active
    folds = min(FOLDS, len(indices))
    fold = folds_of(labels[indices], folds)
    device = data.device
    all_targets = torch.from_numpy(labels).to(device)
    # One draw from the run's generator seeds the folds' own, so the round's training after the
    # check sees the same stream however many folds it needed (and so does a resumed run).
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
    fold_generator = torch.Generator(device=generator.device).manual_seed(int(seed))

    def progress(event: Event) -> None:
        if isinstance(event, PhaseStarted | StepProgress):
            emit(event)

    trials, head_right = [], 0
    for k in range(folds):
        train, held = indices[fold != k], indices[fold == k]
        trial = copy.deepcopy(model)
        positions = torch.from_numpy(train).to(device)
        fit_head(trial, frozen, data, positions, all_targets[positions], fold_generator)
        head_right += round(measure(trial, frozen, held)[1] * len(held))
        trials.append((trial, positions, held))
    finetuned_right, finetuned_folds, unseen = 0, 0, len(indices)
    for trial, positions, held in trials:
        if settled(head_right, finetuned_right, unseen):
            break
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
            generator=fold_generator,
            optimizer=trial_optimizer,
            on_collapse="warn",
        )
        finetuned_right += round(measure(trial, None, held)[1] * len(held))
        finetuned_folds += 1
        unseen -= len(held)
    return SwitchVerdict(folds, len(indices), head_right, finetuned_right, finetuned_folds)
