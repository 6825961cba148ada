"""The dataset as uint8 tensors on the training device; a subset is just an index tensor.

Under `torchrun` each rank keeps only its shard of the images (`Shard`): a pool of a million
images is split across the GPUs instead of copied onto each. Positions everywhere else stay
global; `local` turns them into rows of this rank's shard.
"""

from __future__ import annotations

import numpy as np
import torch

from salal_core.data.sources import ImageSet
from salal_core.distributed import Shard, all_sum

STATS_CHUNK = 2048  # images per step of the normalisation statistics (memory stays flat)


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation in [0, 1] of (n, C, H, W) uint8 images, summed
    over every rank's shard where it runs under torchrun. The sums are of whole pixel values in
    float64, exact below 2**53 in any order, so every world size normalises bit for bit alike."""
    n, c, h, w = images.shape
    totals = torch.zeros(2 * c + 1, dtype=torch.float64, device=images.device)
    for start in range(0, n, STATS_CHUNK):
        x = images[start : start + STATS_CHUNK].double()
        totals[:c] += x.sum(dim=(0, 2, 3))
        totals[c : 2 * c] += x.square().sum(dim=(0, 2, 3))
    totals[2 * c] = n * h * w
    all_sum(totals)
    count = totals[2 * c].clamp_min(1.0)
    mean = totals[:c] / count
    # Unbiased, as torch.std is; clamped so a constant channel does not divide by zero.
    var = (totals[c : 2 * c] - count * mean * mean) / (count - 1).clamp_min(1.0)
    return (mean / 255.0).float(), (var.clamp_min(0.0).sqrt() / 255.0).float().clamp_min(1e-3)


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
        mean, std = normalization or channel_stats(self.train_images)
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
