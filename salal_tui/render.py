"""Images as terminal text: term-image half-blocks, two pixels per cell, every pixel shown.

Half-blocks work over SSH, tmux and mosh alike. We upscale with NEAREST ourselves (so a 32x32
image stays crisp), let term-image emit the ANSI, and hand it to Rich as Text.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image
from rich.text import Text

# term-image warns at import when stdout is not a terminal (Textual owns it); the filter must be
# set before the import, and its terminal queries must be off: they race Textual's input thread.
warnings.filterwarnings("ignore", category=UserWarning, message=".*not running within a terminal")
import term_image  # noqa: E402
from term_image.image import BlockImage  # noqa: E402

term_image.disable_queries()


def fit_scale(width: int, height: int, max_cols: int, max_rows: int) -> float:
    """The largest scale at which a width x height image fits max_cols x max_rows half-block
    cells; whole numbers when enlarging, so every source pixel becomes an equal square."""
    scale = min(max_cols / width, 2 * max_rows / height)
    return float(int(scale)) if scale >= 1 else scale


def image_text(pixels: np.ndarray, max_cols: int, max_rows: int) -> Text:
    """(H, W, 3) uint8 -> Text of at most max_cols x max_rows cells."""
    h, w = pixels.shape[:2]
    scale = fit_scale(w, h, max(1, max_cols), max(1, max_rows))
    size = (max(1, int(w * scale)), max(2, int(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    img = Image.fromarray(pixels).resize(size, resample)
    block = BlockImage(img)
    block.set_size(width=size[0])
    return Text.from_ansi(str(block), no_wrap=True)
