"""How far labelers agree: counts, observed agreement, pairwise Cohen's kappa, Fleiss' kappa,
and the images most disagreed on. Pure functions over each labeler's standing answers.

Fleiss' kappa takes the form for a varying number of raters per image (each image's share of
agreeing pairs, and the class shares over every answer given), which is Fleiss (1971) when
every image has the same number. The observed agreement is the mean share of agreeing pairs
over the images two or more people answered: with two labelers, 1 - the disagreeing share.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from salal_core.json_text import number
from salal_core.run.consensus import Vote
from salal_core.run.stability import cohen_kappa

# Item -> labeler -> class: each labeler's standing answer (consensus.standing_votes).
Answers = Mapping[int, Mapping[str, int]]


@dataclass(frozen=True)
class LabelerCount:
    labeler: str
    answers: int


@dataclass(frozen=True)
class PairAgreement:
    """Two labelers over the images both answered."""

    first: str
    second: str
    images: int
    observed: float
    kappa: float


@dataclass(frozen=True)
class DisputedImage:
    item: int
    answers: tuple[tuple[str, int], ...]  # (labeler, class), in labeler order
    agreement: float  # the share of its pairs of answers that agree


@dataclass(frozen=True)
class Agreement:
    labelers: tuple[LabelerCount, ...]
    overlapping: int  # images answered by two or more labelers
    observed: float  # NaN without an overlapping image
    fleiss: float
    pairs: tuple[PairAgreement, ...]
    disputed: tuple[DisputedImage, ...]  # the least agreed on first


def nobody() -> Agreement:
    """The figures of a run no person labeled (or none yet)."""
    return Agreement((), 0, math.nan, math.nan, (), ())


def from_json(data: Mapping[str, Any]) -> Agreement:
    """Read back an Agreement written as JSON (RUN_DIR/summary.json), its nulls as NaN."""
    return Agreement(
        tuple(LabelerCount(**c) for c in data["labelers"]),
        data["overlapping"],
        number(data["observed"]),
        number(data["fleiss"]),
        tuple(
            PairAgreement(
                p["first"], p["second"], p["images"], number(p["observed"]), number(p["kappa"])
            )
            for p in data["pairs"]
        ),
        tuple(
            DisputedImage(
                d["item"],
                tuple((who, label) for who, label in d["answers"]),
                number(d["agreement"]),
            )
            for d in data["disputed"]
        ),
    )


def people_answers(votes: Mapping[int, Iterable[Vote]]) -> dict[int, dict[str, int]]:
    """Each person's standing answer on every item, from the journal's votes: people only
    (the ground truth, an imported file and the preset's first labels name no labeler)."""
    return {
        item: {v.record.labeler: v.record.label for v in vs if v.record.labeler}
        for item, vs in votes.items()
    }


def pair_share(labels: list[int]) -> float:
    """The share of an image's pairs of answers that agree (needs two or more)."""
    n = len(labels)
    return sum(c * (c - 1) for c in Counter(labels).values()) / (n * (n - 1))


def fleiss_kappa(rated: list[list[int]], classes: int) -> float:
    """Fleiss' kappa over images each rated by two or more; NaN with none. When every answer
    is one class, chance agreement is 1 and kappa is 1.0 (they agree, trivially)."""
    rated = [labels for labels in rated if len(labels) >= 2]
    if not rated:
        return math.nan
    observed = float(np.mean([pair_share(labels) for labels in rated]))
    counts = np.bincount(np.concatenate([np.asarray(r) for r in rated]), minlength=classes)
    chance = float(np.sum((counts / counts.sum()) ** 2))
    if chance >= 1.0:
        return 1.0
    return (observed - chance) / (1.0 - chance)


def measure(answers: Answers, classes: int, top: int = 10) -> Agreement:
    """Every figure at once, from each labeler's standing answers."""
    answers = {item: by for item, by in answers.items() if by}
    counts = Counter(labeler for by in answers.values() for labeler in by)
    labelers = sorted(counts)
    rated = {item: by for item, by in answers.items() if len(by) >= 2}
    shares = {item: pair_share(list(by.values())) for item, by in rated.items()}
    pairs = []
    for a, b in itertools.combinations(labelers, 2):
        both = [by for by in answers.values() if a in by and b in by]
        first = np.array([by[a] for by in both], dtype=np.int64)
        second = np.array([by[b] for by in both], dtype=np.int64)
        observed = float(np.mean(first == second)) if both else math.nan
        pairs.append(PairAgreement(a, b, len(both), observed, cohen_kappa(first, second, classes)))
    disputed = sorted(
        (item for item, share in shares.items() if share < 1.0),
        key=lambda item: (shares[item], -len(rated[item]), item),
    )
    return Agreement(
        tuple(LabelerCount(name, counts[name]) for name in labelers),
        len(rated),
        float(np.mean(list(shares.values()))) if shares else math.nan,
        fleiss_kappa([list(by.values()) for by in rated.values()], classes),
        tuple(pairs),
        tuple(
            DisputedImage(item, tuple(sorted(rated[item].items())), shares[item])
            for item in disputed[:top]
        ),
    )
