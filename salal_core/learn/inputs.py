"""What a linear head can read: a pretrained backbone's embedding, the rotation network's
features, the raw pixels, or all of them side by side. Each is one matrix over the pool and one
over the test split, standardized with the pool's statistics (the unlabeled images set the
scale, so the few labels do not), and each is a candidate the probe learner weighs on the
labels.

Raw pixels are always a candidate: logistic regression on them is the simplest baseline there
is, so a folder where the backbone's features do not help (grayscale digits, say) still gets a
head no worse than it. So is every input at once (`combined`): on the digits, the backbone's
features beside the pixels beat the pixels alone at every label count measured (BENCHMARKS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch.nn import functional as F

from salal_core.data import DeviceData
from salal_core.learn.batchnorm import recalibrate
from salal_core.learn.frozen import stage_features
from salal_core.learn.model import Net
from salal_core.learn.probe import standardize
from salal_core.learn.train import prepare

PIXELS = "pixels"
ROTNET = "rotnet"
JOIN = "+"  # the combined input's name: its parts' names, joined
# The selectors' distances read this many principal components of an input: k-means and
# k-center cost grow with the dimension, and a pretrained embedding has 384 to 2,048 of them
# (pixels 3,072), while the pool's coarse structure, which clustering finds, lies in the first.
DISTANCE_DIMS = 128


@dataclass(frozen=True)
class HeadFeatures:
    """One candidate input of the head, standardized, with the statistics that did it."""

    name: str  # a backbone's name, "rotnet", "pixels", or theirs joined by JOIN (side by side)
    train: torch.Tensor  # (N, D) standardized: the pool, in position order
    test: torch.Tensor  # (M, D) standardized
    mean: torch.Tensor  # (D,) of the raw features over the pool
    std: torch.Tensor  # (D,)

    @classmethod
    def standardized(cls, name: str, train: torch.Tensor, test: torch.Tensor) -> HeadFeatures:
        mean = train.mean(0)
        # One image has no spread to divide by (and torch warns that it cannot measure one).
        std = train.std(0).clamp_min(1e-6) if len(train) > 1 else torch.ones_like(mean)
        return cls(name, standardize(train, mean, std), standardize(test, mean, std), mean, std)

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    def distances(self, rows: torch.Tensor) -> torch.Tensor:
        """Unit-length rows for the selectors' distances (typiclust, coreset, cluster_margin,
        the cold start), on the pool's first `DISTANCE_DIMS` principal components."""
        return self._principal[rows]

    @cached_property
    def _principal(self) -> torch.Tensor:
        """(N, at most DISTANCE_DIMS) unit rows (fewer where the pool has fewer images or the
        input fewer dimensions): computed on first use, as only the input the head reads is
        ever clustered."""
        axes = principal_axes(self.train, DISTANCE_DIMS)
        return F.normalize(self.train if axes is None else self.train @ axes, dim=1)


@dataclass(frozen=True)
class CombinedFeatures(HeadFeatures):
    """Every input side by side (`combined`), with the parts it was made of."""

    parts: tuple[HeadFeatures, ...]

    def distances(self, rows: torch.Tensor) -> torch.Tensor:
        """The first part's (the backbone's): the head reads every input as a hedge on few
        labels, but the pool's clusters are the backbone's to find. On the side-by-side rows,
        or on each part's rows in equal shares, typiclust's picks cost the 5,000 pack images
        6 to 7 points at 20 labels (BENCHMARKS.md)."""
        return self.parts[0].distances(rows)


def combined(parts: Sequence[HeadFeatures]) -> CombinedFeatures:
    """Every input side by side, each standardized part scaled to the same share of a row's
    length (the row as long as the first part's alone, so the head's L2 strengths mean what they
    mean for it): without the scaling, 3,072 pixel columns would outweigh 1,280 of a backbone.
    The scale is folded into `std`, so standardizing the parts' raw features side by side gives
    these rows again, as an exported model does."""
    first = parts[0].dim
    scales = [math.sqrt(first / (len(parts) * part.dim)) for part in parts]
    return CombinedFeatures(
        JOIN.join(part.name for part in parts),
        torch.cat([part.train * scale for part, scale in zip(parts, scales, strict=True)], 1),
        torch.cat([part.test * scale for part, scale in zip(parts, scales, strict=True)], 1),
        torch.cat([part.mean for part in parts]),
        torch.cat([part.std / scale for part, scale in zip(parts, scales, strict=True)]),
        tuple(parts),
    )


def principal_axes(x: torch.Tensor, dims: int) -> torch.Tensor | None:
    """(D, min(dims, N)) the leading principal axes of centred rows `x` (N, D), or None where D
    is no more than `dims`. A randomized SVD (Halko et al., 2011: a range found by a seeded Gaussian
    sketch and two power iterations), so a 50,000-image pool costs seconds, not a full SVD."""
    if x.shape[1] <= dims:
        return None
    sketch = torch.randn(x.shape[1], dims + 10, generator=torch.Generator().manual_seed(0))
    basis = torch.linalg.qr(x @ sketch.to(x))[0]
    for _ in range(2):  # power iterations sharpen the range where the spectrum decays slowly
        basis = torch.linalg.qr(x @ (x.T @ basis))[0]
    right: torch.Tensor = torch.linalg.svd(basis.T @ x, full_matrices=False).Vh
    return right[:dims].T


def pixel_features(data: DeviceData) -> HeadFeatures:
    """Each image's normalized pixels, flattened: (N, 3 * H * W)."""
    train = prepare(data.train_images, data).float().flatten(1).cpu()
    test = prepare(data.test_images, data).float().flatten(1).cpu()
    return HeadFeatures.standardized(PIXELS, train, test)


def rotnet_features(model: Net, data: DeviceData, batch_size: int) -> HeadFeatures:
    """The rotation network's pooled features, as its own head reads them, its BatchNorm
    statistics first recomputed over the upright pool (as the rotnet learner does)."""
    recalibrate(model, data, torch.arange(len(data.train_images), device=data.device), rotate=False)
    train = stage_features(model, data.train_images, data, batch_size).head.cpu()
    test = stage_features(model, data.test_images, data, batch_size).head.cpu()
    return HeadFeatures.standardized(ROTNET, train, test)


def embedding_features(name: str, train: torch.Tensor, test: torch.Tensor) -> HeadFeatures:
    """A pretrained backbone's embedding (backbones/embed.py)."""
    return HeadFeatures.standardized(name, train.float(), test.float())
