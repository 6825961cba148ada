"""Acquisition functions: probabilities in, scores out, higher score = ask first.

Every function is pure over a committee tensor of shape (K, N, C): K members' class
probabilities for N pool items. Single-model functions score the committee's mean, so a model
with one head (K = 1) and a committee go through the same code. Entropy is in bits (base 2), as
the write-up states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

EPS = 1e-12


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """(N, C) -> (N,) Shannon entropy in bits; 0 for one-hot, log2(C) for uniform."""
    p = probs.float()
    return -(p * torch.log2(p.clamp_min(EPS))).sum(-1)


def variation_ratio(probs: torch.Tensor) -> torch.Tensor:
    """(N, C) -> (N,) 1 - max p: how much mass lies off the predicted class."""
    return 1.0 - probs.float().max(-1).values


def margin(probs: torch.Tensor) -> torch.Tensor:
    """(N, C) -> (N,) 1 - (top-1 - top-2): the smallest margin gets the highest score."""
    top2 = probs.float().topk(2, dim=-1).values
    return 1.0 - (top2[..., 0] - top2[..., 1])


def vote_entropy(committee: torch.Tensor) -> torch.Tensor:
    """(K, N, C) -> (N,) entropy in bits of the members' hard votes."""
    k, _, c = committee.shape
    votes = torch.nn.functional.one_hot(committee.argmax(-1), c).float().sum(0) / k  # (N, C)
    return entropy(votes)


def mean_kl_to_consensus(committee: torch.Tensor) -> torch.Tensor:
    """(K, N, C) -> (N,) mean over members of KL(member || consensus), in bits."""
    p = committee.float().clamp_min(EPS)
    consensus = p.mean(0, keepdim=True)
    return (p * (torch.log2(p) - torch.log2(consensus))).sum(-1).mean(0)


def uniform_random(committee: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(K, N, C) -> (N,) seeded uniform scores: the baseline every strategy must beat."""
    n = committee.shape[1]
    return torch.rand(n, generator=generator, device=committee.device)


Score = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


@dataclass(frozen=True)
class Acquisition:
    name: str
    score: Score  # (K, N, C) -> (N,)
    committee: bool  # True: needs K > 1 members to mean anything
    description: str


def _on_mean(fn: Callable[[torch.Tensor], torch.Tensor]) -> Score:
    def score(committee: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return fn(committee.float().mean(0))

    return score


def _on_committee(fn: Callable[[torch.Tensor], torch.Tensor]) -> Score:
    def score(committee: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return fn(committee)

    return score


ACQUISITIONS: dict[str, Acquisition] = {
    a.name: a
    for a in (
        Acquisition("entropy", _on_mean(entropy), False, "predictive entropy in bits"),
        Acquisition("variation_ratio", _on_mean(variation_ratio), False, "1 - max probability"),
        Acquisition("margin", _on_mean(margin), False, "smallest top-1 minus top-2 first"),
        Acquisition(
            "qbc",
            _on_committee(vote_entropy),
            True,
            "query by committee: vote entropy of K bootstrap heads",
        ),
        Acquisition(
            "qbc_kl",
            _on_committee(mean_kl_to_consensus),
            True,
            "query by committee: mean KL divergence to the consensus",
        ),
        Acquisition("random", uniform_random, False, "uniformly at random (baseline)"),
    )
}


def get(name: str) -> Acquisition:
    from .errors import SalalError

    try:
        return ACQUISITIONS[name]
    except KeyError:
        raise SalalError(
            f"unknown acquisition {name!r}; choose one of: {', '.join(ACQUISITIONS)}"
        ) from None


def top_k(scores: torch.Tensor, k: int, priority: torch.Tensor) -> torch.Tensor:
    """Positions of the k highest scores; ties go to the lower `priority` value.

    `priority` is a fixed seeded permutation, so ties break the same way every run without
    favouring low dataset indices (which, in a class-ordered source, would favour one class).
    """
    order = torch.argsort(priority)  # positions by ascending priority
    ranked = torch.sort(scores[order], descending=True, stable=True).indices
    return order[ranked[:k]]
