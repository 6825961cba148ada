"""Batched augmentation on the device: no PIL, no DataLoader inside the training loop.

Order matters: crop and flip first, rotate last. A flip after a 90-degree turn is a 270-degree
turn of the flipped image, which would make the rotation labels contradict each other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32, standardised per channel.

    Keeping uint8 on the device and converting per batch moves a quarter of the bytes of floats.
    """
    return (images.float().div_(255.0) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def crop_batch(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image shifted by (dy[i], dx[i]) in [-pad, pad], borders filled by reflection.

    One gather for the whole batch instead of a Python loop over images.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    rows = torch.arange(h, device=images.device).view(1, h) + (pad + dy).view(b, 1)  # (B, H)
    cols = torch.arange(w, device=images.device).view(1, w) + (pad + dx).view(b, 1)  # (B, W)
    batch = torch.arange(b, device=images.device).view(b, 1, 1)
    out = padded[batch, :, rows.view(b, h, 1), cols.view(b, 1, w)]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)  # (B, C, H, W), channels_last in memory already


def flip_batch(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images where `mask` (B,) is true."""
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(3), images)


def augment_batch(
    images: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4
) -> torch.Tensor:
    """Random crop with `pad`-pixel reflection padding, then a random horizontal flip."""
    b = images.shape[0]
    device = images.device
    dy = torch.randint(-pad, pad + 1, (b,), device=device, generator=generator)
    dx = torch.randint(-pad, pad + 1, (b,), device=device, generator=generator)
    flip = torch.rand(b, device=device, generator=generator) < 0.5
    return flip_batch(crop_batch(images, dy, dx, pad), flip)


def rotation_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four quarter turns of each image, and labels 0-3 (turns counter-clockwise).

    (B, C, H, W) -> (4B, C, H, W); label k means the image was turned by k * 90 degrees.
    """
    b = images.shape[0]
    turned = torch.cat([images.rot90(k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(b)
    return turned, labels


def resized_crop_batch(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.35, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Each image's own random crop (a `scale` share of its area, of aspect within `ratio`),
    resized back to the full side, mirrored left-right half the time: Inception's
    random-resized-crop, as pretrained backbones were trained with, for a whole float batch at
    once by one affine resampling (no per-image Python loop)."""
    b, device = images.shape[0], images.device
    drawn_on = generator.device if generator is not None else device

    def uniform(low: float, high: float) -> torch.Tensor:
        drawn = torch.rand(b, device=drawn_on, generator=generator)
        return (low + (high - low) * drawn).to(device)

    area = uniform(*scale)
    aspect = uniform(math.log(ratio[0]), math.log(ratio[1])).exp()
    width = (area * aspect).sqrt().clamp(max=1.0)  # shares of the side
    height = (area / aspect).sqrt().clamp(max=1.0)
    # In the sampler's [-1, 1] coordinates the crop's centre may move by 1 - its half-share.
    x = (1 - width) * uniform(-1.0, 1.0)
    y = (1 - height) * uniform(-1.0, 1.0)
    mirror = torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=device, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = width * mirror, x
    theta[:, 1, 1], theta[:, 1, 2] = height, y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
