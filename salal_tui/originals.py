"""What to draw for an image, at the size a view can show: its own pixels where they can be
read (the file of a folder source, the member of an archive), else the model's decoded copy."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from salal_core.data import ImageSet
from salal_core.data.originals import ArchiveMembers, plain_tar
from salal_core.data.sources import IMAGE_SUFFIXES
from salal_core.errors import SalalError

from .render import Pixels


def load_original(source: Path | bytes, max_width: int, max_height: int) -> np.ndarray | None:
    """An image file (or its bytes) as RGB, decoded no larger than max_width x max_height pixels
    (JPEG's draft mode decodes a photo at 1/8 scale in a few milliseconds); None if it cannot be
    read any more, so the caller falls back to the decoded copy."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.draft("RGB", (max_width, max_height))
            img = img.convert("RGB")
            img.thumbnail((max_width, max_height), Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


class Originals:
    """The images of one load, each drawn from its own bytes where they can be read.

    A folder source is read file by file. An archive of image files is indexed by a thread
    (a compressed one decompressed once into `cache_dir` first); until that is done, and for
    CIFAR's pickled rows, images are drawn from the model's copy.
    """

    def __init__(self, images: ImageSet, cache_dir: Path) -> None:
        self.images = images
        self.members: ArchiveMembers | None = None
        self.indexed = threading.Event()
        source, ids = Path(images.source), images.train.ids
        if source.is_file() and ids and PurePosixPath(ids[0]).suffix.lower() in IMAGE_SUFFIXES:
            threading.Thread(target=self._index, args=(source, cache_dir), daemon=True).start()
        else:
            self.indexed.set()

    def _index(self, archive: Path, cache_dir: Path) -> None:
        try:
            self.members = ArchiveMembers(plain_tar(archive, cache_dir))
        except (SalalError, OSError, tarfile.TarError):
            pass  # drawn from the model's copy, as before the index
        finally:
            self.indexed.set()

    def pixels(self, index: int) -> Pixels:
        """Training image `index` at the size the view asks for."""
        images = self.images

        def pixels(max_width: int, max_height: int) -> np.ndarray:
            source: Path | bytes | None = images.original_path(index)
            if source is None and self.members is not None:
                source = self.members.read(images.train.ids[index])
            original = load_original(source, max_width, max_height) if source else None
            return original if original is not None else images.train.images[index]

        return pixels
