"""The dataset as uint8 tensors on the training device; a subset is just an index tensor."""

from __future__ import annotations

import numpy as np
import torch

from .sources import ImageSet


class DeviceData:
    """Train and test images (N, C, H, W) uint8 and labels (N,) int64 (-1: unknown) on `device`."""

    def __init__(
        self,
        data: ImageSet,
        device: torch.device,
        normalization: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """`normalization` (mean, std): a trained model's own, for images it did not train on;
        by default this training set's."""
        self.device = device
        self.class_names = list(data.class_names)
        self.train_ids = data.train.ids
        self.test_ids = data.test.ids
        self.has_test = data.has_test
        self.train_images = self._images(data.train.images)
        self.train_labels = torch.from_numpy(data.train.labels).to(device)
        self.test_images = self._images(data.test.images)
        self.test_labels = torch.from_numpy(data.test.labels).to(device)
        if normalization is not None:
            self.mean, self.std = (t.to(device) for t in normalization)
            return
        # Per-channel statistics of this training set, so any image collection is standardised.
        x = self.train_images.float().div_(255.0)
        self.mean = x.mean(dim=(0, 2, 3))
        self.std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)

    def _images(self, array: np.ndarray) -> torch.Tensor:
        """(N, H, W, C) numpy -> (N, C, H, W) on the device."""
        return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous().to(self.device)

    @property
    def num_train(self) -> int:
        return self.train_images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
