"""What a joined labeler is sent of an image: its own bytes where they can be read (its file,
or its archive member), else a PNG of the model's decoded copy."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from salal_core.data.originals import OriginalSources

MAX_IMAGE_BYTES = 11 * 1024 * 1024  # own bytes travel up to this: as base64, within a frame


def own_bytes(originals: OriginalSources, index: int) -> tuple[str, bytes]:
    """(suffix, bytes) of training image `index`, as a file of that suffix would hold them."""
    images = originals.images
    source = originals.source(index)
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError:
        data = None  # gone since it was loaded: the decoded copy
    if data is not None and len(data) < MAX_IMAGE_BYTES:
        return PurePosixPath(images.train.ids[index]).suffix.lower(), data
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(images.train.images[index])).save(buffer, "PNG")
    return ".png", buffer.getvalue()
