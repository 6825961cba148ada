"""Which input a probe head reads: the backbone, unless the labels clearly say otherwise.

The backbone is what a person chose, and it stays the head's input unless the labels clearly
say otherwise: each candidate's held-out predictions under k-fold cross-validation, at its own
best L2 strength, are compared label by label with the backbone's, and another input is taken
only where it gets clearly more of them right. On few labels the folds' accuracies differ by
chance alone: taking the higher one put the heads on 1,000 pack images on raw pixels in 3 runs
of 5 at 10 labels and at 20, 8 to 20 points down (BENCHMARKS.md). With two labels a class or
fewer the folds cannot judge at all (a label held out has at most one classmate left to learn
from: on the digits at 20 labels the backbone and the inputs side by side, 16 to 20 points
apart on the test images, differed by two held-out labels or fewer in three runs of five), and
the head reads every input side by side: on the folders measured that is never below the
pixels alone, where the backbone alone can be far below them.

Pure functions of the scores: the learner (probe_learner.py) and the study that measures the
rule (benchmarks/input_rules.py) ask the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from salal_core.learn.probe import HeldOutScore

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

Reason = Literal["few labels", "the backbone", "clearly better", "asked for"]


@dataclass(frozen=True)
class InputChoice:
    """Which input the head reads, why, and what each candidate scored on the labels."""

    name: str
    l2: float
    reason: Reason
    accuracies: tuple[tuple[str, float], ...]  # (candidate, k-fold accuracy); () on few labels

    def describe(self, round_: int) -> str:
        if self.reason == "asked for":
            return f"round {round_}: the head reads {self.name} (--fine-tune always)"
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
