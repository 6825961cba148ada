"""Data: sources decoded once to a uint8 cache, device-resident tensors, batched augmentation."""

from salal_core.data.augment import augment_batch, crop_batch, flip_batch, normalize, rotation_batch
from salal_core.data.device_data import DeviceData
from salal_core.data.load import load_dataset
from salal_core.data.sources import ImageSet, Split

__all__ = [
    "DeviceData",
    "ImageSet",
    "Split",
    "augment_batch",
    "crop_batch",
    "flip_batch",
    "load_dataset",
    "normalize",
    "rotation_batch",
]
