"""What `compare` concludes from its runs: accuracy at each labeled fraction, the area under the
budget curve (AUBC) of each run, and each strategy's difference to random, paired by seed, with
a 95% interval. Pure functions over RunSummary, so they are tested on hand-made curves."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from salal_core.run.summary import RunSummary

BASELINE = "random"
REFERENCE = "all labels"  # the same pretrained start, fine-tuned on every label

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (then ~1.96): seeds are
# few, and the normal quantile would make their intervals look tighter than they are.
# fmt: off
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)
# fmt: on


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds, its standard deviation and a 95% interval (NaN with one seed)."""

    mean: float
    std: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        n = len(values)
        mean = statistics.fmean(values)
        if n < 2:
            return cls(mean, 0.0, math.nan, math.nan, n)
        std = statistics.stdev(values)
        t = T95[n - 2] if n - 1 <= len(T95) else 1.96
        half = t * std / math.sqrt(n)
        return cls(mean, std, mean - half, mean + half, n)

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly on one side of zero (False when there is none)."""
        return self.low > 0 or self.high < 0


def aubc(summary: RunSummary) -> float:
    """Area under accuracy-versus-labeled-fraction, over the fractions the run covered, divided
    by their width: the run's mean accuracy across its budget (trapezoids; NaN points skipped)."""
    points = [
        (p.fraction, p.test_accuracy) for p in summary.curve if not math.isnan(p.test_accuracy)
    ]
    if len(points) < 2:
        return points[0][1] if points else math.nan
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))
    return area / (points[-1][0] - points[0][0])


def by_fraction(runs: Sequence[RunSummary]) -> dict[float, dict[int, float]]:
    """fraction -> seed -> accuracy."""
    out: dict[float, dict[int, float]] = {}
    for run in runs:
        for p in run.curve:
            out.setdefault(round(p.fraction, 4), {})[run.seed] = p.test_accuracy
    return out


@dataclass(frozen=True)
class Row:
    """One strategy at one labeled fraction; `diff` is to random, paired by seed."""

    strategy: str
    fraction: float
    accuracy: Estimate
    diff: Estimate | None


@dataclass(frozen=True)
class Verdict:
    """One strategy over the whole budget."""

    strategy: str
    aubc: Estimate
    diff: Estimate | None  # AUBC minus random's, paired by seed


def paired(a: dict[int, float], b: dict[int, float]) -> Estimate | None:
    seeds = sorted(set(a) & set(b))
    return Estimate.of([a[s] - b[s] for s in seeds]) if seeds else None


def rows(summaries: dict[str, list[RunSummary]], against: str = BASELINE) -> list[Row]:
    """Each arm at each fraction, and its difference to the arm named `against`."""
    baseline = by_fraction(summaries.get(against, []))
    out = []
    for strategy, runs in summaries.items():
        for fraction, accs in sorted(by_fraction(runs).items()):
            diff = None
            if strategy not in (against, REFERENCE) and fraction in baseline:
                diff = paired(accs, baseline[fraction])
            out.append(Row(strategy, fraction, Estimate.of(list(accs.values())), diff))
    return out


def verdicts(summaries: dict[str, list[RunSummary]], against: str = BASELINE) -> list[Verdict]:
    base = {r.seed: aubc(r) for r in summaries.get(against, [])}
    out = []
    for strategy, runs in summaries.items():
        if strategy == REFERENCE:
            continue
        mine = {r.seed: aubc(r) for r in runs}
        diff = paired(mine, base) if strategy != against and base else None
        out.append(Verdict(strategy, Estimate.of(list(mine.values())), diff))
    return out
