"""The one way salal decodes an image file, for the model's copy and for the screen alike: its
first frame, turned the way its EXIF orientation says, as 8-bit RGB, within a stated size.

16-bit images are scaled to 8 bits (Pillow's own conversion clips them, so most turn white);
transparent ones are laid on white; palette, CMYK and grey become RGB. A file over
`MAX_PIXELS` is refused before its pixels are decoded, as Pillow's guard against
decompression bombs does, but as a reason to skip it rather than a raw warning.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MIN_SIDE = 8  # smaller images carry too little to label or learn from
MAX_PIXELS = 89_478_485  # Pillow's own limit (a 9,459 x 9,459 image): ~256 MiB decoded as RGB
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # "I" is how older Pillow reads them
WITH_ALPHA = {"RGBA", "RGBa", "LA", "PA"}

# warnings.catch_warnings changes the process's filters (before Python 3.14): the app decodes
# on several threads, so one opens at a time. Opening reads the header only; it is quick.
_OPENING = threading.Lock()


class Undecodable(Exception):
    """A file salal will not decode, and why: what its entry in a skipped-files list says."""

    def __init__(self, reason: Literal["unreadable", "too small", "too large"], detail: str):
        super().__init__(detail)
        self.reason = reason


def _open(source: Path | bytes) -> Image.Image:
    """The image with its header read and its size checked; no pixel decoded yet."""
    with _OPENING, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise Undecodable("too large", str(exc)) from None
        except Exception as exc:  # Pillow raises many types for what is no image it reads
            raise Undecodable("unreadable", str(exc)) from None
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise Undecodable("too large", f"{img.width}x{img.height} is over {MAX_PIXELS:,} pixels")
    return img


def _as_rgb(img: Image.Image) -> Image.Image:
    """Any mode as 8-bit RGB: 16-bit scaled (not clipped), transparency laid on white."""
    if img.mode in SIXTEEN_BIT:
        wide = np.asarray(img).astype(np.int64).clip(0, 65535)
        img = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")
    if img.mode in WITH_ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def open_rgb(source: Path | bytes, draft: tuple[int, int] | None = None) -> Image.Image:
    """An image file (or its bytes) decoded: first frame, upright, 8-bit RGB. `draft` lets a
    JPEG decode at a fraction of its size (at least that many pixels each way), for a view.
    Raises Undecodable."""
    with _open(source) as img:
        try:
            if draft is not None:
                side = max(draft)  # the EXIF turn may swap width and height
                img.draft("RGB", (side, side))
            # A turned copy: the pixels are decoded here (None only when asked to turn in place).
            upright = ImageOps.exif_transpose(img)
            return _as_rgb(img if upright is None else upright)
        except Exception as exc:  # truncated data, a broken EXIF block, an unknown mode...
            raise Undecodable("unreadable", str(exc)) from None


def decode_image(data: bytes, size: int) -> np.ndarray:
    """The model's copy of an image file's bytes: (size, size, 3) uint8. Raises Undecodable."""
    img = open_rgb(data)
    if min(img.size) < MIN_SIDE:
        raise Undecodable("too small", f"smaller than {MIN_SIDE}x{MIN_SIDE}")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img, dtype=np.uint8)
