"""Per-item scores: probabilities in, scores out, higher score = ask first.

Every function is pure over a committee tensor of shape (K, N, C): K members' class
probabilities for N pool items. Single-model functions score the committee's mean, so a model
with one head (K = 1) and a committee go through the same code. Entropy is in bits (base 2), as
the write-up states.
"""

from __future__ import annotations

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


def bald(committee: torch.Tensor) -> torch.Tensor:
    """(K, N, C) -> (N,) mutual information between the prediction and the committee member,
    in bits: the entropy of the mean minus the mean entropy (Houlsby et al., 2011). High where
    members are each confident but disagree, zero where they all say the same."""
    p = committee.float()
    return entropy(p.mean(0)) - entropy(p).mean(0)


def uniform_random(committee: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(K, N, C) -> (N,) seeded uniform scores: the baseline every strategy must beat."""
    n = committee.shape[1]
    return torch.rand(n, generator=generator, device=committee.device)


def top_k(scores: torch.Tensor, k: int, priority: torch.Tensor) -> torch.Tensor:
    """Positions of the k highest scores; ties go to the lower `priority` value.

    `priority` is seeded per image (from its digest), so ties break the same way every run
    without favouring low dataset indices (which, in a class-ordered source, would favour one
    class).
    """
    order = torch.argsort(priority)  # positions by ascending priority
    ranked = torch.sort(scores[order], descending=True, stable=True).indices
    return order[ranked[:k]]
