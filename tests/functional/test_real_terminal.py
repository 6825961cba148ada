"""salal-tui in a real terminal with real pixels: xterm in sixel mode on a virtual X display,
screenshotted, the image region compared with its source (tests/xterm.py runs the terminal);
and in kitty, whose Debian version needs half-blocks.

A pixel-mode image must match the source resized to the size it is drawn at (Pearson
correlation over the region, found by cross-correlation); half-blocks, two pixels a cell, blur
the fine detail of these images and fail that threshold, but match the source brought down to
their own resolution. In CI (`CI` set) a missing X tool fails these tests instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import tiny_cli
from xterm import CELL, MISSING, colours, salal_tui_in_xterm, save, virtual_display

if MISSING and os.environ.get("CI"):
    raise RuntimeError(f"the real-terminal tests need {', '.join(MISSING)} (.ci/run installs them)")
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason="needs Xvfb, xterm and kitty (.ci/run installs them)"
)

SIZE = (110, 34)
SIDE = (600, 500)
THRESHOLD = 0.8  # correlation with the source at the size it is drawn


def detailed(seed: int) -> np.ndarray:
    """A 600x500 image of 6-pixel squares in random colours: detail that half-blocks lose."""
    rng = np.random.default_rng(seed)
    squares = rng.integers(0, 256, (SIDE[1] // 6 + 1, SIDE[0] // 6 + 1, 3), dtype=np.uint8)
    return np.kron(squares, np.ones((6, 6, 1), np.uint8))[: SIDE[1], : SIDE[0]]


def write_folder(root: Path) -> Path:
    """A folder of images, no class folders, that differ only in their corner pixel: the
    first is asked at once, and whichever it is, the test knows what it looks like."""
    root.mkdir(parents=True)
    base = detailed(0)
    for i in range(24):
        image = base.copy()
        image[0, 0] = (i, 0, 0)
        Image.fromarray(image).save(root / f"{i:02d}.png")
    return root


@pytest.fixture
def display() -> Iterator[str]:
    with virtual_display() as name:
        yield name


def grey(shot: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(shot).convert("L"), dtype=np.float64)


def shown(display: str, tmp_path: Path, images: str, kitty: bool = False) -> np.ndarray:
    """The screen once the first image is drawn: many colours, where the app has a few (kitty's
    smoothed text has a few hundred)."""
    data = write_folder(tmp_path / "photos")
    args = tiny_cli("salal_tui", data, tmp_path / "run", tmp_path / "c")[1:]  # its arguments
    args = [*args, "--images", images, "--classes", "a,b", "--acquisition", "random"]
    many = 2000 if kitty else 150
    shot = salal_tui_in_xterm(display, args, SIZE, lambda s: colours(s) > many, kitty=kitty)
    save(shot, tmp_path / "screen.png")  # under pytest's tmp_path, to look at on a failure
    return grey(shot)


def best_match(shot: np.ndarray, expected: np.ndarray) -> float:
    """The Pearson correlation of `expected` with the screenshot region where it fits best."""
    h, w = expected.shape
    kernel = expected - expected.mean()
    size = (shot.shape[0] + h, shot.shape[1] + w)
    scores = np.fft.irfft2(
        np.fft.rfft2(shot - shot.mean(), size) * np.conj(np.fft.rfft2(kernel, size)), size
    )[: shot.shape[0] - h + 1, : shot.shape[1] - w + 1]
    y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
    region = shot[y : y + h, x : x + w]
    return float(np.corrcoef(region.ravel(), expected.ravel())[0, 1])


def shown_at(
    source: np.ndarray, size: tuple[int, int], blur_to: tuple[int, int] | None
) -> np.ndarray:
    """The source at `size` (grey), brought down to `blur_to` pixels first where given."""
    image = Image.fromarray(source)
    if blur_to is not None:
        image = image.resize(blur_to, Image.Resampling.BOX)
    resample = Image.Resampling.NEAREST if blur_to else Image.Resampling.LANCZOS
    return np.asarray(image.resize(size, resample).convert("L"), dtype=np.float64)


def pixel_sizes() -> list[tuple[int, int]]:
    """Every size pixel mode could draw the picture at in a pane of 40 to 66 columns (its
    height follows the rest of the screen, so the width is what is searched)."""
    return [(w, w * SIDE[1] // SIDE[0]) for w in range(40 * CELL[0], 66 * CELL[0] + 1, 2)]


def block_sizes(cell: tuple[int, int] = CELL) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """In half-blocks: (its half-block pixels, its size on screen, a cell's width by half its
    height each)."""
    sizes = []
    for w in range(40, 67):
        cells = w, w * SIDE[1] // SIDE[0]
        sizes.append((cells, (cells[0] * cell[0], cells[1] * cell[1] // 2)))
    return sizes


def test_pixels_in_xterm_match_the_source_and_blocks_do_not(display: str, tmp_path: Path) -> None:
    source = detailed(0)
    pixels_shot = shown(display, tmp_path / "pixels", "pixels")
    blocks_shot = shown(display, tmp_path / "blocks", "blocks")
    sharp = [shown_at(source, size, None) for size in pixel_sizes()]
    pixel_score = max(best_match(pixels_shot, expected) for expected in sharp)
    blocks_score = max(best_match(blocks_shot, expected) for expected in sharp)
    assert pixel_score > THRESHOLD, (pixel_score, blocks_score)  # 0.96 when measured
    assert blocks_score < THRESHOLD, (pixel_score, blocks_score)  # 0.19
    # Half-blocks show the same image at their own resolution.
    blocky = max(
        best_match(blocks_shot, shown_at(source, size, cells)) for cells, size in block_sizes()
    )
    assert blocky > THRESHOLD, (blocky, blocks_score)  # 0.89


def test_auto_in_an_old_kitty_draws_half_blocks(tmp_path: Path) -> None:
    """Debian's kitty (0.26) answers the kitty graphics query but cannot show textual-image's
    pictures: `--images auto` asks its version and draws half-blocks, so the image is there.
    (Pixel mode in kitty needs 0.28 or later, which no Debian package has: untested here.)"""
    source = detailed(0)
    with virtual_display((1400, 900)) as display:
        shot = shown(display, tmp_path, "auto", kitty=True)
    # kitty's cells are its font's size: the window's extent on the black root, over its cells.
    window = np.argwhere(shot > 0)
    cell = ((window[:, 1].max() + 1) // SIZE[0], (window[:, 0].max() + 1) // SIZE[1])
    best = max(best_match(shot, shown_at(source, size, cells)) for cells, size in block_sizes(cell))
    assert best > THRESHOLD, best
