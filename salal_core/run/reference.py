"""The curve a run can be held against: the measured anchors of the same experiment.

DESIGN.md's anchors were measured on one H200 on the full CIFAR-10 training set: rotation
pretraining, then 15 epochs a round from 20% to 50% labeled, +5% a round. Random went from
81.5% to 87.2% test accuracy, entropy from 81.5% to 88.9%, and entropy at 35% matched random
at 50%. A run on the same 50,000 images is drawn beside them; any other run has no reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from salal_core.run.summary import RunSummary

CIFAR10_TRAIN = 50_000


@dataclass(frozen=True)
class ReferenceCurve:
    """A named series of (labels, test accuracy) points."""

    name: str
    labels: tuple[int, ...]
    accuracy: tuple[float, ...]


RANDOM = ReferenceCurve("random, H200 anchor", (10_000, 25_000), (0.815, 0.872))
ENTROPY = ReferenceCurve("entropy, H200 anchor", (10_000, 17_500, 25_000), (0.815, 0.872, 0.889))


def reference_for(summary: RunSummary) -> ReferenceCurve | None:
    """The anchor to draw beside a run: entropy's for an entropy run, random's for any other
    strategy (the baseline it has to beat); None off the full CIFAR-10 training set."""
    source = summary.config.data.source or "cifar10"
    if summary.train_size != CIFAR10_TRAIN or "cifar10" not in Path(source).name.lower():
        return None
    return ENTROPY if summary.acquisition == "entropy" else RANDOM
