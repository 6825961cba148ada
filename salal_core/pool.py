"""Labeled and unlabeled bookkeeping over global dataset indices.

Each training item holds the round it was labeled in (-1 while it sits in the pool), so the
history comes for free and the pool is simply `round < 0`. Nothing here ever deals in
pool-relative positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import SalalError


class LabelState:
    def __init__(self, size: int) -> None:
        self.round = np.full(size, -1, dtype=np.int64)
        self.labels = np.full(size, -1, dtype=np.int64)

    @property
    def size(self) -> int:
        return len(self.round)

    @property
    def labeled_mask(self) -> np.ndarray:
        return self.round >= 0

    @property
    def num_labeled(self) -> int:
        return int(self.labeled_mask.sum())

    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labeled_mask)

    def pool_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled_mask)

    def add(
        self, indices: Sequence[int], labels: Sequence[int], round_: int | Sequence[int]
    ) -> None:
        """Label items of the pool; labeling an item twice is a bug, so it raises."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) == 0:
            return
        if (idx < 0).any() or (idx >= self.size).any():
            raise SalalError(f"label index out of range 0..{self.size - 1}")
        if len(np.unique(idx)) != len(idx) or self.labeled_mask[idx].any():
            raise ValueError(f"items labeled twice: {idx[self.labeled_mask[idx]].tolist()}")
        self.labels[idx] = np.asarray(labels, dtype=np.int64)
        self.round[idx] = np.asarray(round_, dtype=np.int64)

    def state_dict(self) -> dict:
        return {"round": self.round.copy(), "labels": self.labels.copy()}

    @classmethod
    def from_arrays(cls, round_: np.ndarray, labels: np.ndarray) -> LabelState:
        state = cls(len(round_))
        state.round[:] = round_
        state.labels[:] = labels
        return state
