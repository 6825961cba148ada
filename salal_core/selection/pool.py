"""What selection sees of the pool, in one typed bundle: every strategy has one signature,
(pool, k, generator) -> (k positions in the pool, a score for each to show the person)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

# What a strategy reads of a pool pass beside the probabilities: under torchrun each part is
# gathered from every rank, and a million images' features are gigabytes, so only on demand.
PoolPart = Literal["features", "embeddings"]
ALL_PARTS: tuple[PoolPart, ...] = ("features", "embeddings")


@dataclass(frozen=True)
class Pool:
    probabilities: torch.Tensor  # (K, P, C): each committee member's class probabilities
    features: torch.Tensor  # (P, D): the head's input, for gradient embeddings; (P, 0) unasked
    embeddings: torch.Tensor  # (P, E): for distances between images; likewise
    labeled_embeddings: torch.Tensor  # (L, E): what is labeled already (empty when unused)
    priority: torch.Tensor  # (P,) int64: a seeded order per image that breaks ties

    @property
    def size(self) -> int:
        return int(self.probabilities.shape[1])


Select = Callable[[Pool, int, torch.Generator | None], tuple[torch.Tensor, torch.Tensor]]
