"""The learner on a frozen pretrained backbone: a linear head, fit to convergence each round,
on whichever input the labels show is best.

The candidates are the backbone's embedding, the rotation network's features where the run has
one, the raw pixels, and all of them side by side (inputs.py). The backbone is what a person
chose, and it stays the head's input unless the labels clearly say otherwise: each candidate's
held-out predictions under k-fold cross-validation, at its own best L2 strength, are compared
label by label with the backbone's, and another input is taken only where it gets clearly more
of them right. On few labels the folds' accuracies differ by chance alone: taking the higher
one put the heads on 1,000 pack images on raw pixels in 3 runs of 5 at 10 labels and at 20,
8 to 20 points down (BENCHMARKS.md). With two labels a class or fewer the folds cannot judge
at all (a label held out has at most one classmate left to learn from: on the digits at 20
labels the backbone and the inputs side by side, 16 to 20 points apart on the test images,
differed by two held-out labels or fewer in three runs of five), and the head reads every
input side by side: on the folders measured that is never below the pixels alone, where the
backbone alone can be far below them.

Nothing here trains a network, so a round takes seconds on a CPU and the pool pass is a matrix
product.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from salal_core.events import Emit, EpochEnded, Notice, PhaseChanged, PhaseStarted
from salal_core.learn.inputs import HeadFeatures, combined
from salal_core.learn.learner import PoolPass
from salal_core.learn.probe import (
    HeldOutScore,
    cross_validate,
    fit_probe,
    probe_probs,
    standardize,
)
from salal_core.selection.pool import ALL_PARTS, PoolPart

# Cross-validating every candidate on every label would make late rounds slow for no gain in
# the choice: past this many labels (or this many a class, on folders of many classes), a
# seeded sample of them decides.
CHOICE_LABELS = 400
CHOICE_LABELS_A_CLASS = 10
# How clear "clearly more right" is: of the held-out labels exactly one of two inputs gets
# right, the other's wins minus the backbone's must pass this many standard deviations of that
# difference under a coin toss (a one-sided sign test at about 84%).
EVIDENCE = 1.0
# Up to this many labels a class on average, cross-validation cannot judge the inputs.
FEW_LABELS_A_CLASS = 2

Reason = Literal["few labels", "the backbone", "clearly better"]


@dataclass(frozen=True)
class InputChoice:
    """Which input the head reads, why, and what each candidate scored on the labels."""

    name: str
    l2: float
    reason: Reason
    accuracies: tuple[tuple[str, float], ...]  # (candidate, k-fold accuracy); () on few labels

    def describe(self, round_: int) -> str:
        if self.reason == "few labels":
            return (
                f"round {round_}: two labels a class or fewer, too few to tell the inputs "
                f"apart: the head reads them all side by side ({self.name})"
            )
        scores = ", ".join(f"{name} {accuracy:.2f}" for name, accuracy in self.accuracies)
        backbone = self.accuracies[0][0]
        why = (
            f"clearly more held-out labels right than {backbone}"
            if self.reason == "clearly better"
            else "no other input clearly better"
        )
        return (
            f"round {round_}: the head reads {self.name}: {why} (cross-validated accuracy {scores})"
        )


def choice_sample(indices: np.ndarray, classes: int) -> np.ndarray:
    """The labels the input is chosen on: all of them, or past `CHOICE_LABELS` (and
    `CHOICE_LABELS_A_CLASS` a class) a sample seeded by their count, the same on a resume."""
    size = max(CHOICE_LABELS, CHOICE_LABELS_A_CLASS * classes)
    if len(indices) <= size:
        return indices
    rng = np.random.default_rng(len(indices))
    return np.sort(rng.choice(indices, size, replace=False))


def few_labels(count: int, classes: int) -> bool:
    """Whether `count` labels are too few for cross-validation to judge the inputs."""
    return count <= FEW_LABELS_A_CLASS * classes


def pick(scores: Sequence[tuple[str, HeldOutScore]]) -> tuple[str, Reason]:
    """The first input (the backbone) unless another is clearly better on the same held-out
    labels; of those that are, the most accurate (ties: the earlier)."""
    (first, default), rest = scores[0], scores[1:]
    better = [(name, score) for name, score in rest if clearly_better(score, default)]
    if not better:
        return first, "the backbone"
    return max(better, key=lambda b: b[1].accuracy)[0], "clearly better"


def clearly_better(challenger: HeldOutScore, default: HeldOutScore) -> bool:
    """Whether `challenger` got clearly more of the same held-out labels right (`EVIDENCE`)."""
    wins = int((challenger.right & ~default.right).sum())
    losses = int((default.right & ~challenger.right).sum())
    return wins - losses > EVIDENCE * math.sqrt(wins + losses)


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
    ) -> None:
        if not candidates:
            raise ValueError("a probe learner needs at least one input")
        everything = [*candidates, combined(candidates)] if len(candidates) > 1 else candidates
        self.candidates = {c.name: c for c in everything}
        self.order = [c.name for c in everything]  # the backbone first: the default
        self.combined = everything[-1].name
        self.test_labels = test_labels.cpu()
        self.has_test, self.num_classes, self.members = has_test, num_classes, members
        self.generator, self.emit = generator, emit
        self.head = restored if restored is not None and restored.input in self.candidates else None

    @property
    def head_input(self) -> str:
        """What the head reads now (before the first fit: the first candidate)."""
        return self.head.input if self.head is not None else self.order[0]

    # ---------------------------------------------------------------- fitting
    def choose(self, indices: np.ndarray, labels: np.ndarray) -> InputChoice:
        """The input the head reads on these labels, and each candidate's k-fold accuracy on
        them (or on a seeded sample of them, past `CHOICE_LABELS`); up to two labels a class,
        every input side by side, with no accuracies to show."""
        if few_labels(len(indices), self.num_classes):
            y = torch.from_numpy(labels[indices])
            both = self.candidates[self.combined].train[indices]
            return InputChoice(
                self.combined, cross_validate(both, y, self.num_classes).l2, "few labels", ()
            )
        rows = choice_sample(indices, self.num_classes)
        y = torch.from_numpy(labels[rows])
        scores = {
            name: cross_validate(self.candidates[name].train[rows], y, self.num_classes)
            for name in self.order
        }
        name, reason = pick(list(scores.items()))
        accuracies = tuple((n, scores[n].accuracy) for n in self.order)
        return InputChoice(name, scores[name].l2, reason, accuracies)

    def fit(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        started = time.perf_counter()
        self.emit(PhaseChanged("training", f"round {round_}: {len(indices)} labels, the head"))
        self.emit(PhaseStarted("finetune", round_, 1, 1))
        choice = self.choose(indices, labels)
        if self.head is None or choice.name != self.head.input:  # said when it changes
            self.emit(Notice(choice.describe(round_), "info"))
        features = self.candidates[choice.name]
        x = features.train[indices]
        y = torch.from_numpy(labels[indices])
        seed = torch.randint(0, 2**31, (1,), generator=self.generator, device=self.generator.device)
        bootstrap = torch.Generator().manual_seed(int(seed))
        weight = fit_probe(x, y, self.num_classes, bootstrap, self.members, choice.l2)
        self.head = FittedHead(choice.name, choice.l2, weight, features.mean, features.std)
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
        return asdict(self.head), {}

    @staticmethod
    def restore(state: dict[str, Any]) -> FittedHead | None:
        """The head a round checkpoint holds (None if it holds none)."""
        if not state or "weight" not in state:
            return None
        return FittedHead(
            str(state["input"]), float(state["l2"]), state["weight"], state["mean"], state["std"]
        )
