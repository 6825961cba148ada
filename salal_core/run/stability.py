"""The stop rules: when the predictions stop changing (Bloodgood and Vijay-Shanker, CoNLL
2009), or when the accuracy curve has gone flat.

Each round the model predicts a fixed stop set of images that were unlabeled when it was drawn;
Cohen's kappa between this round's predictions and the last round's says how much the model
still moves. Once kappa, averaged over the last rounds, reaches 0.99 (small-text's
KappaAverage defaults), more labels are unlikely to change what the model says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

STOP_SET_SIZE = 1000
STABLE_ROUNDS = 3
STABLE_KAPPA = 0.99


@dataclass(frozen=True)
class StopSet:
    """The stop set's item ids, and the last round's prediction for each (-1: none yet, or
    the image has left the pool's source)."""

    items: tuple[int, ...]
    predictions: tuple[int, ...]

    @classmethod
    def draw(cls, item_ids: np.ndarray, priority: np.ndarray, unlabeled: np.ndarray) -> StopSet:
        """The STOP_SET_SIZE unlabeled images first in the digest-seeded priority: the same
        images whatever order the source lists them in. Kept in the checkpoint from then on,
        so resuming or a growing folder never changes it."""
        candidates = np.flatnonzero(unlabeled)
        chosen = candidates[np.argsort(priority[candidates], kind="stable")[:STOP_SET_SIZE]]
        items = tuple(int(i) for i in item_ids[np.sort(chosen)])
        return cls(items, (-1,) * len(items))

    def advance(
        self,
        item_ids: np.ndarray,
        predict: Callable[[np.ndarray], np.ndarray],
        classes: int,
    ) -> tuple[StopSet, float]:
        """This round's predictions of the images still in the pool's source (`predict`:
        positions -> classes), kept for the next round, and Cohen's kappa against the last
        round's (NaN when there is none)."""
        position = {int(item): p for p, item in enumerate(item_ids)}
        present = [i for i, item in enumerate(self.items) if item in position]
        predictions = np.full(len(self.items), -1, dtype=np.int64)
        if present:
            predictions[present] = predict(np.array([position[self.items[i]] for i in present]))
        kappa = kappa_between(self.predictions, predictions, classes)
        return StopSet(self.items, tuple(int(p) for p in predictions)), kappa


def cohen_kappa(first: np.ndarray, second: np.ndarray, classes: int) -> float:
    """Cohen's kappa between two label vectors: (observed - chance) / (1 - chance) agreement.
    Two identical vectors give 1.0, also when both say one class throughout (chance
    agreement 1, where the formula divides zero by zero); no pairs give NaN."""
    if len(first) == 0:
        return math.nan
    observed = float(np.mean(first == second))
    if observed == 1.0:
        return 1.0
    p = np.bincount(first, minlength=classes) / len(first)
    q = np.bincount(second, minlength=classes) / len(second)
    chance = float(np.dot(p, q))
    return (observed - chance) / (1.0 - chance)


def kappa_between(
    before: Sequence[int] | np.ndarray, after: Sequence[int] | np.ndarray, classes: int
) -> float:
    """Kappa over the stop-set images predicted in both rounds."""
    a, b = np.asarray(before), np.asarray(after)
    both = (a >= 0) & (b >= 0)
    return cohen_kappa(a[both], b[both], classes)


def is_stable(kappas: Sequence[float]) -> bool:
    """The last STABLE_ROUNDS kappas (all measured) average STABLE_KAPPA or more."""
    recent = list(kappas)[-STABLE_ROUNDS:]
    if len(recent) < STABLE_ROUNDS or any(math.isnan(k) for k in recent):
        return False
    return sum(recent) / STABLE_ROUNDS >= STABLE_KAPPA


def is_flat(accuracies: Sequence[float], rounds: int) -> bool:
    """--stop-when-flat R: the best accuracy of the last R rounds is no better than the best
    before them (rounds with nothing to measure on do not count; R = 0: never)."""
    measured = [a for a in accuracies if not math.isnan(a)]
    if not rounds or len(measured) <= rounds:
        return False
    return max(measured[-rounds:]) <= max(measured[:-rounds])
