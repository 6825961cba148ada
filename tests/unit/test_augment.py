"""Augmentation invariants and rotation labels."""

import torch

from salal_core.data import augment_batch, crop_batch, flip_batch, rotation_batch
from salal_core.data.augment import normalize, resized_crop_batch


def images(b: int = 6, h: int = 12) -> torch.Tensor:
    return torch.arange(b * 3 * h * h, dtype=torch.float32).view(b, 3, h, h)


def test_crop_is_a_shifted_window_of_the_padded_image() -> None:
    x = images()
    dy = torch.tensor([-4, -1, 0, 2, 4, 3])
    dx = torch.tensor([0, 4, -4, 1, -2, 3])
    out = crop_batch(x, dy, dx, pad=4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(len(x)):
        y0, x0 = 4 + dy[i].item(), 4 + dx[i].item()
        assert torch.equal(out[i], padded[i, :, y0 : y0 + 12, x0 : x0 + 12])
    assert torch.equal(
        crop_batch(x, torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long), 4), x
    )


def test_flip_is_a_flip_where_asked() -> None:
    x = images(4)
    mask = torch.tensor([True, False, True, False])
    out = flip_batch(x, mask)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])


def test_augment_keeps_shape_and_dtype_and_varies() -> None:
    x = torch.rand(64, 3, 32, 32)
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    again = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_turning_back_recovers_the_input() -> None:
    x = images(5)
    turned, labels = rotation_batch(x)
    assert turned.shape == (20, 3, 12, 12)
    assert labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for k in range(4):
        back = turned[labels == k].rot90(-k, dims=(2, 3))
        assert torch.equal(back, x)


def test_normalize_standardises_uint8() -> None:
    x = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    mean = x.float().div(255).mean(dim=(0, 2, 3))
    std = x.float().div(255).std(dim=(0, 2, 3))
    out = normalize(x, mean, std)
    assert out.dtype == torch.float32
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_resized_crop_is_each_images_own_window_resized_and_seeded() -> None:
    x = torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1)
    # The whole image at its own aspect: each one comes back as it was, or mirrored.
    whole = resized_crop_batch(x, torch.Generator().manual_seed(0), (1.0, 1.0), (1.0, 1.0))
    for out in whole:
        assert min((out - x[0]).abs().max(), (out - x[0].flip(-1)).abs().max()) < 1e-5
    # A quarter of the area: one picture, eight different crops, the same ones from the seed.
    crops = resized_crop_batch(x, torch.Generator().manual_seed(1), (0.25, 0.25))
    assert crops.shape == x.shape
    assert len({tuple(c.flatten()[:8].tolist()) for c in crops}) == 8
    assert torch.equal(crops, resized_crop_batch(x, torch.Generator().manual_seed(1), (0.25, 0.25)))
