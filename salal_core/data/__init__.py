"""Data: sources decoded once to a uint8 cache, device-resident tensors, batched augmentation."""

from .augment import augment_batch, crop_batch, flip_batch, normalize, rotation_batch
from .device_data import DeviceData
from .load import load_dataset
from .sources import ImageSet, Split

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
