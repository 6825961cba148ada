"""The dataset as uint8 tensors on the training device; a subset is just an index tensor.

Under `torchrun` each rank keeps only its shard of the images (`Shard`): a pool of a million
images is split across the GPUs instead of copied onto each. Positions everywhere else stay
global; `local` turns them into rows of this rank's shard.
"""

from __future__ import annotations

import numpy as np
import torch

from ..distributed import Shard
from .sources import ImageSet

STATS_CHUNK = 8192  # images per step of the normalisation statistics (host memory stays flat)


def channel_stats(images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation in [0, 1] of (N, H, W, C) uint8 images, over all
    of them whichever shard a rank holds: every rank normalises alike."""
    total = np.zeros(images.shape[-1])
    squares = np.zeros(images.shape[-1])
    for start in range(0, len(images), STATS_CHUNK):
        x = images[start : start + STATS_CHUNK].astype(np.float64) / 255.0
        total += x.sum(axis=(0, 1, 2))
        squares += (x * x).sum(axis=(0, 1, 2))
    count = max(1, images.shape[0] * images.shape[1] * images.shape[2])
    mean = total / count
    # Unbiased, as torch.std is; clamped so a constant channel does not divide by zero.
    var = (squares - count * mean * mean) / max(1, count - 1)
    std = np.sqrt(np.maximum(var, 0.0)).clip(min=1e-3)
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


class DeviceData:
    """This rank's train and test images (n, C, H, W) uint8 and labels (n,) int64 (-1:
    unknown) on `device`; `num_train` counts the whole pool, over every rank."""

    def __init__(
        self,
        data: ImageSet,
        device: torch.device,
        normalization: tuple[torch.Tensor, torch.Tensor] | None = None,
        shard: Shard | None = None,
    ) -> None:
        """`normalization` (mean, std): a trained model's own, for images it did not train on;
        by default this training set's. `shard`: the rows this rank holds (all by default)."""
        self.device = device
        self.shard = shard or Shard()
        self.class_names = list(data.class_names)
        self.train_ids = data.train.ids
        self.test_ids = data.test.ids
        self.has_test = data.has_test
        self.num_train = len(data.train)
        self.num_test = len(data.test)
        rows = slice(self.shard.rank, None, self.shard.size)  # a view: nothing is copied
        self.train_images = self._images(data.train.images[rows])
        self.train_labels = torch.from_numpy(data.train.labels[rows]).to(device)
        self.test_images = self._images(data.test.images[rows])
        self.test_labels = torch.from_numpy(data.test.labels[rows]).to(device)
        mean, std = normalization or channel_stats(data.train.images)
        self.mean, self.std = mean.to(device), std.to(device)

    def _images(self, array: np.ndarray) -> torch.Tensor:
        """(N, H, W, C) numpy -> (N, C, H, W) on the device."""
        return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous().to(self.device)

    def local(self, positions: torch.Tensor) -> torch.Tensor:
        """Rows of this rank's shard for the global pool positions it holds, order kept."""
        return self.shard.local(positions)

    def mine(self, values: torch.Tensor) -> torch.Tensor:
        """The entries of a whole-pool tensor (one per global position) this rank holds."""
        return values[self.shard.rank :: self.shard.size]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
