"""Every acquisition strategy by name, behind one signature: (Pool, k, generator) -> (k pool
positions, a score for each). Per-item scores (scores.py) come through a thin top-k adapter;
batch-aware strategies (selectors.py) choose the batch as a whole."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from salal_core.errors import SalalError
from salal_core.selection import scores, selectors
from salal_core.selection.pool import Pool, PoolPart, Select

Score = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]  # (K, N, C) -> (N,)


@dataclass(frozen=True)
class Acquisition:
    name: str
    select: Select
    committee: bool  # needs K > 1 heads to mean anything
    sees_labeled: bool  # needs the labeled images' embeddings (clusters and distances do)
    description: str
    parts: tuple[PoolPart, ...] = ()  # what it reads of the pool pass beyond probabilities
    # Whether a query's score says something to a person (an uncertainty of that image). A
    # batch selector's is its own bookkeeping (typicality reaches 1e12 on duplicates), and a
    # random draw's says nothing: the app shows those without a number.
    readable_score: bool = True


def by_score(score: Score) -> Select:
    """A per-item score as a strategy: the k highest, ties broken by the pool's priority."""

    def select(
        pool: Pool, k: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        values = score(pool.probabilities, generator)
        chosen = scores.top_k(values, k, pool.priority)
        return chosen, values[chosen]

    return select


def on_mean(fn: Callable[[torch.Tensor], torch.Tensor]) -> Score:
    """A single-model score applied to the committee's mean prediction."""

    def score(committee: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return fn(committee.float().mean(0))

    return score


def on_committee(fn: Callable[[torch.Tensor], torch.Tensor]) -> Score:
    """A score of the committee's disagreement, over all K members."""

    def score(committee: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return fn(committee)

    return score


ACQUISITIONS: dict[str, Acquisition] = {
    a.name: a
    for a in (
        Acquisition(
            "entropy",
            by_score(on_mean(scores.entropy)),
            committee=False,
            sees_labeled=False,
            description="predictive entropy in bits",
        ),
        Acquisition(
            "variation_ratio",
            by_score(on_mean(scores.variation_ratio)),
            committee=False,
            sees_labeled=False,
            description="1 - max probability",
        ),
        Acquisition(
            "margin",
            by_score(on_mean(scores.margin)),
            committee=False,
            sees_labeled=False,
            description="smallest top-1 minus top-2 first",
        ),
        Acquisition(
            "qbc",
            by_score(on_committee(scores.vote_entropy)),
            committee=True,
            sees_labeled=False,
            description="query by committee: vote entropy of K bootstrap heads",
        ),
        Acquisition(
            "qbc_kl",
            by_score(on_committee(scores.mean_kl_to_consensus)),
            committee=True,
            sees_labeled=False,
            description="query by committee: mean KL divergence to the consensus",
        ),
        Acquisition(
            "bald",
            by_score(on_committee(scores.bald)),
            committee=True,
            sees_labeled=False,
            description="mutual information between the prediction and the committee member",
        ),
        Acquisition(
            "typiclust",
            selectors.typiclust,
            committee=False,
            sees_labeled=True,
            description="the most typical image of each large cluster without a label (cold start)",
            parts=("embeddings",),
            readable_score=False,
        ),
        Acquisition(
            "coreset",
            selectors.coreset,
            committee=False,
            sees_labeled=True,
            description="k-center greedy: the images farthest from everything labeled",
            parts=("embeddings",),
            readable_score=False,
        ),
        Acquisition(
            "badge",
            selectors.badge,
            committee=False,
            sees_labeled=False,
            description="k-means++ over last-layer gradient embeddings",
            parts=("features",),
            readable_score=False,
        ),
        Acquisition(
            "cluster_margin",
            selectors.cluster_margin,
            committee=False,
            sees_labeled=False,
            description="the smallest margins, then one image per cluster among them",
            parts=("embeddings",),
            readable_score=False,
        ),
        Acquisition(
            "random",
            by_score(scores.uniform_random),
            committee=False,
            sees_labeled=False,
            description="uniformly at random (the baseline)",
            readable_score=False,
        ),
    )
}

COLD_START = "typiclust"  # with no label yet, every strategy but random starts this way


def get(name: str) -> Acquisition:
    try:
        return ACQUISITIONS[name]
    except KeyError:
        raise SalalError(
            f"unknown acquisition {name!r}; choose one of: {', '.join(ACQUISITIONS)}"
        ) from None
