"""What to draw for an image, at the size a view can show: its own pixels where they can be
read (the file of a folder source, the member of an archive), else the model's decoded copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from salal_core.data.decode import Undecodable, open_rgb
from salal_core.data.originals import OriginalSources

from .render import Pixels


def load_original(source: Path | bytes, max_width: int, max_height: int) -> np.ndarray | None:
    """An image file (or its bytes) decoded as the model's copy is (upright, 8-bit RGB), no
    larger than max_width x max_height pixels (JPEG's draft mode decodes a photo at 1/8 scale in
    a few milliseconds); None if it cannot be read any more, so the caller falls back to the
    decoded copy."""
    try:
        img = open_rgb(source, draft=(max_width, max_height))
    except Undecodable:
        return None
    img.thumbnail((max_width, max_height), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


class Originals(OriginalSources):
    """The images of one load, each drawn from its own bytes where they can be read (see
    `OriginalSources`), else from the model's decoded copy."""

    def pixels(self, index: int) -> Pixels:
        """Training image `index` at the size the view asks for."""
        images = self.images

        def pixels(max_width: int, max_height: int) -> np.ndarray:
            source = self.source(index)
            original = load_original(source, max_width, max_height) if source else None
            return original if original is not None else images.train.images[index]

        return pixels
