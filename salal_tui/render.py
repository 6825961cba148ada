"""Images as terminal lines: term-image half-blocks, two pixels per cell, every pixel shown.

Half-blocks work over SSH, tmux and mosh alike. We upscale with NEAREST ourselves (so a 32x32
image stays crisp), let term-image emit the ANSI, and turn that into the lines (strips) that
Textual's line API draws as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

# term-image warns at import when stdout is not a terminal (Textual owns it); the filter must be
# set before the import, and its terminal queries must be off: they race Textual's input thread.
warnings.filterwarnings("ignore", category=UserWarning, message=".*not running within a terminal")
import term_image  # noqa: E402
from term_image.image import BlockImage  # noqa: E402

term_image.disable_queries()

SGR = "\x1b["


def whole_scale(width: int, height: int, max_width: int, max_height: int) -> float:
    """The largest scale at which a width x height image fits max_width x max_height pixels;
    whole numbers when enlarging, so every source pixel becomes an equal square."""
    scale = min(max_width / width, max_height / height)
    return float(int(scale)) if scale >= 1 else scale


def fit_scale(width: int, height: int, max_cols: int, max_rows: int) -> float:
    """`whole_scale` into max_cols x max_rows half-block cells, two pixels each."""
    return whole_scale(width, height, max_cols, 2 * max_rows)


Pixels = Callable[[int, int], np.ndarray]  # (width, height): the image, at most that many pixels


def fitted(pixels: np.ndarray, max_width: int, max_height: int, min_height: int = 1) -> Image.Image:
    """(H, W, 3) uint8 as large as fits max_width x max_height pixels: enlarged by a whole
    factor with NEAREST (every source pixel an equal square), shrunk with LANCZOS."""
    h, w = pixels.shape[:2]
    scale = whole_scale(w, h, max(1, max_width), max(1, max_height))
    size = (max(1, int(w * scale)), max(min_height, int(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return Image.fromarray(pixels).resize(size, resample)


def half_block_ansi(pixels: np.ndarray, max_cols: int, max_rows: int) -> str:
    """(H, W, 3) uint8 -> term-image's ANSI for at most max_cols x max_rows cells."""
    image = fitted(pixels, max_cols, 2 * max_rows, min_height=2)
    block = BlockImage(image)
    block.set_size(width=image.width)
    return str(block)


def image_strips(pixels: np.ndarray, max_cols: int, max_rows: int) -> list[Strip]:
    """The image as one Strip per terminal row.

    term-image writes only 24-bit colours and resets, so this reads them directly: a few
    milliseconds an image, where Rich's general ANSI decoder and line splitter take several
    times as long, and a keypress has 50 ms in all. The tests hold it to Rich's reading.
    """
    strips = []
    for row in half_block_ansi(pixels, max_cols, max_rows).split("\n"):
        segments = []
        colours: Colours = (None, None)  # SGR state carries over from one sequence to the next
        for chunk in row.split(SGR):
            params, _, text = chunk.partition("m")
            colours = _apply_sgr(params, colours)
            if text:
                segments.append(Segment(text, _style(colours)))
        strips.append(Strip(segments))
    return strips


RGB = tuple[int, int, int]
Colours = tuple[RGB | None, RGB | None]  # foreground, background


def _apply_sgr(params: str, colours: Colours) -> Colours:
    """The colours after one SGR sequence: 38/48;2;r;g;b set, 39/49 clear, 0 or nothing resets."""
    codes = [int(c) for c in params.split(";") if c] or [0]
    foreground, background = colours
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
            rgb = (codes[i + 2], codes[i + 3], codes[i + 4])
            foreground, background = (rgb, background) if code == 38 else (foreground, rgb)
            i += 5
            continue
        if code == 0:
            foreground = background = None
        elif code == 39:
            foreground = None
        elif code == 49:
            background = None
        i += 1
    return foreground, background


@lru_cache(maxsize=4096)
def _style(colours: Colours) -> Style | None:
    foreground, background = (None if c is None else _truecolor(*c) for c in colours)
    # from_color is Rich's fast constructor: no parsing, which Style() would do per colour.
    return Style.from_color(foreground, background) if foreground or background else None


def _truecolor(red: int, green: int, blue: int) -> Color:
    """What Color.from_rgb builds, without the detours it takes through hex formatting."""
    return Color(
        f"#{red:02x}{green:02x}{blue:02x}",
        ColorType.TRUECOLOR,
        triplet=ColorTriplet(red, green, blue),
    )
