"""The learner on a frozen pretrained backbone: a linear head, fit to convergence each round,
on whichever input the labels show is best (input_choice.py).

The candidates are the backbone's embedding, the rotation network's features where the run has
one, the raw pixels, and all of them side by side (inputs.py); where a tuner is at hand
(`--fine-tune`), a copy of the backbone fine-tuned on the labels too (tuned_input.py).

Without fine-tuning nothing here trains a network, so a round takes seconds on a CPU and the
pool pass is a matrix product.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from salal_core.events import Emit, EpochEnded, Notice, PhaseChanged, PhaseStarted
from salal_core.learn.input_choice import (
    InputChoice,
    Reason,
    choice_sample,
    few_labels,
    pick,
)
from salal_core.learn.inputs import HeadFeatures, combined
from salal_core.learn.learner import PoolPass
from salal_core.learn.probe import (
    cross_validate,
    fit_probe,
    probe_probs,
    standardize,
)
from salal_core.learn.tuned_input import TunedInput, Tuner
from salal_core.selection.pool import ALL_PARTS, PoolPart

# Where a round checkpoint keeps the fine-tuned backbone whose features the head reads.
TUNED_STATE = "tuned_backbone"


@dataclass(frozen=True)
class FittedHead:
    """The head as a round checkpoint and a model file keep it: what it reads, how that input
    is standardized, and its weights."""

    input: str
    l2: float
    weight: torch.Tensor  # (K, D + 1, C): K committee members over standardized features
    mean: torch.Tensor  # (D,) the input's raw pool statistics (side by side: each part's,
    std: torch.Tensor  # and each part's std divided by its scale, inputs.combined)

    def probabilities(self, raw: torch.Tensor) -> torch.Tensor:
        """(N, D) raw features -> (N, C), the committee's mean."""
        return probe_probs(self.weight, standardize(raw, self.mean, self.std)).mean(0)


class ProbeLearner:
    """A `Learner` (learner.py) over fixed feature matrices: nothing moves but the head."""

    def __init__(
        self,
        candidates: Sequence[HeadFeatures],
        test_labels: torch.Tensor,
        has_test: bool,
        num_classes: int,
        members: int,
        generator: torch.Generator,
        emit: Emit,
        restored: FittedHead | None = None,
        tuner: Tuner | None = None,
        tuned: TunedInput | None = None,
    ) -> None:
        """`tuner` fine-tunes the backbone where the labels say so (or always, as asked);
        `tuned`, a resumed round's tuned input."""
        if not candidates:
            raise ValueError("a probe learner needs at least one input")
        everything = [*candidates, combined(candidates)] if len(candidates) > 1 else candidates
        self.candidates = {c.name: c for c in everything}
        self.order = [c.name for c in everything]  # the backbone first: the default
        self.combined = everything[-1].name
        self.test_labels = test_labels.cpu()
        self.has_test, self.num_classes, self.members = has_test, num_classes, members
        self.generator, self.emit = generator, emit
        self.tuner, self.tuned = tuner, tuned
        if tuned is not None:
            self.candidates[tuned.features.name] = tuned.features
        self.head = restored if restored is not None and restored.input in self.candidates else None

    @property
    def head_input(self) -> str:
        """What the head reads now (before the first fit: the first candidate)."""
        return self.head.input if self.head is not None else self.order[0]

    # ---------------------------------------------------------------- fitting
    def choose(self, indices: np.ndarray, labels: np.ndarray, round_: int = 0) -> InputChoice:
        """The input the head reads on these labels, and each candidate's k-fold accuracy on
        them (or on a seeded sample of them, past `CHOICE_LABELS`); up to two labels a class,
        every input side by side, with no accuracies to show. Where a tuner is at hand, a copy
        of the backbone fine-tuned on them is a candidate too, and when it is chosen (or
        always, as asked) it is tuned on every label and its features join the candidates."""
        if self.tuner is not None and self.tuner.mode == "always":
            return self._tune(self.tuner, indices, labels, round_, "asked for", ())
        if few_labels(len(indices), self.num_classes):
            y = torch.from_numpy(labels[indices])
            both = self.candidates[self.combined].train[indices]
            return InputChoice(
                self.combined, cross_validate(both, y, self.num_classes).l2, "few labels", ()
            )
        rows = choice_sample(indices, self.num_classes)
        y = torch.from_numpy(labels[rows])
        order = list(self.order)
        scores = {
            name: cross_validate(self.candidates[name].train[rows], y, self.num_classes)
            for name in order
        }
        if self.tuner is not None:
            backbone = self.candidates[order[0]]
            scores[self.tuner.name] = self.tuner.held_out(
                rows,
                labels,
                backbone,
                scores[order[0]].l2,
                self.num_classes,
                self.generator,
                round_,
            )
            order.insert(1, self.tuner.name)
        name, reason = pick([(n, scores[n]) for n in order])
        accuracies = tuple((n, scores[n].accuracy) for n in order)
        if self.tuner is not None and name == self.tuner.name:
            l2 = scores[order[0]].l2
            return self._tune(self.tuner, indices, labels, round_, reason, accuracies, l2)
        return InputChoice(name, scores[name].l2, reason, accuracies)

    def _tune(
        self,
        tuner: Tuner,
        indices: np.ndarray,
        labels: np.ndarray,
        round_: int,
        reason: Reason,
        accuracies: tuple[tuple[str, float], ...],
        l2: float | None = None,
    ) -> InputChoice:
        """The backbone tuned on every label from the probe on its frozen features (at
        strength `l2`, cross-validated where not given), the tuned features a candidate, the
        head's strength cross-validated on them."""
        backbone = self.candidates[self.order[0]]
        rows = choice_sample(indices, self.num_classes)
        y = torch.from_numpy(labels[rows])
        if l2 is None:
            l2 = cross_validate(backbone.train[rows], y, self.num_classes).l2
        self.tuned = tuner.tune(
            indices, labels, backbone, l2, self.num_classes, self.generator, round_
        )
        features = self.tuned.features
        self.candidates[features.name] = features
        strength = cross_validate(features.train[rows], y, self.num_classes).l2
        return InputChoice(features.name, strength, reason, accuracies)

    def _forget_unread_tuning(self, head: FittedHead) -> None:
        """A tuned network's features `head` does not read (last round's): gone only once the
        new head is in place, so a round that fails part-way leaves the last one whole."""
        if self.tuned is not None and head.input != self.tuned.features.name:
            self.candidates.pop(self.tuned.features.name, None)
            self.tuned = None

    def fit(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        started = time.perf_counter()
        self.emit(PhaseChanged("training", f"round {round_}: {len(indices)} labels, the head"))
        self.emit(PhaseStarted("finetune", round_, 1, 1))
        choice = self.choose(indices, labels, round_)
        if self.head is None or choice.name != self.head.input:  # said when it changes
            self.emit(Notice(choice.describe(round_), "info"))
        features = self.candidates[choice.name]
        x = features.train[indices]
        y = torch.from_numpy(labels[indices])
        seed = torch.randint(0, 2**31, (1,), generator=self.generator, device=self.generator.device)
        bootstrap = torch.Generator().manual_seed(int(seed))
        weight = fit_probe(x, y, self.num_classes, bootstrap, self.members, choice.l2)
        self.head = FittedHead(choice.name, choice.l2, weight, features.mean, features.std)
        self._forget_unread_tuning(self.head)
        probs = probe_probs(weight, x).mean(0)
        loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), y))
        train_accuracy = float((probs.argmax(1) == y).float().mean())
        test_loss, test_accuracy = self._loss_and_accuracy(held_out, labels)
        seconds = time.perf_counter() - started
        fit, held = (loss, train_accuracy), (test_loss, test_accuracy)
        self.emit(EpochEnded.head_fit(round_, fit, held, len(indices), seconds))
        return test_accuracy

    # ---------------------------------------------------------------- measuring
    def accuracy(self, held_out: np.ndarray | None, labels: np.ndarray) -> float:
        return self._loss_and_accuracy(held_out, labels)[1]

    def _loss_and_accuracy(
        self, held_out: np.ndarray | None, labels: np.ndarray
    ) -> tuple[float, float]:
        if self.head is None:
            return float("nan"), float("nan")
        features = self.candidates[self.head.input]
        if held_out is None:
            x, y = features.test, self.test_labels
        else:
            x, y = features.train[held_out], torch.from_numpy(labels[held_out])
        if len(y) == 0:
            return float("nan"), float("nan")
        probs = probe_probs(self.head.weight, x).mean(0)
        loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), y))
        return loss, float((probs.argmax(1) == y).float().mean())

    # ---------------------------------------------------------------- scoring
    def pool_pass(self, indices: np.ndarray, parts: Collection[PoolPart] = ALL_PARTS) -> PoolPass:
        rows = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        features = self.candidates[self.head_input]
        x = features.train[rows]
        if self.head is None:  # no labels yet: every class alike, as the loop's cold start says
            probs = torch.full((self.members, len(rows), self.num_classes), 1 / self.num_classes)
        else:
            probs = probe_probs(self.head.weight, x)
        empty = x.new_zeros((len(rows), 0))
        return PoolPass(
            probs,
            x if "features" in parts else empty,
            features.distances(rows) if "embeddings" in parts else empty,
        )

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.head is None:
            return {}, {}
        state = asdict(self.head)
        if self.tuned is not None and self.head.input == self.tuned.features.name:
            state[TUNED_STATE] = self.tuned.state
        return state, {}

    @staticmethod
    def restore(state: dict[str, Any]) -> FittedHead | None:
        """The head a round checkpoint holds (None if it holds none)."""
        if not state or "weight" not in state:
            return None
        return FittedHead(
            str(state["input"]), float(state["l2"]), state["weight"], state["mean"], state["std"]
        )
