"""A run's images at a backbone's input size, as uint8 batches: the embedding pass reads every
one in order, fine-tuning reads the labeled ones by position.

Images are read from their own files where the source has them (a photo folder, or an archive
of images), decoded at the backbone's size, so a large photo is not first shrunk to the run's
small training copy; CIFAR's pickled rows have no files and are resized from that copy.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from salal_core.backbones.catalog import BackboneSpec
from salal_core.data.decode import Undecodable, decode_image, open_rgb
from salal_core.data.sources import ImageSet, Split
from salal_core.data.walk import walk_members
from salal_core.errors import SalalError

SplitName = Literal["train", "test"]
Reader = Callable[[], bytes]


class BackboneImages:
    """`images` at `spec`'s input size: from the files where every image has one larger than
    the run's decoded copy, else resized from that copy."""

    def __init__(self, images: ImageSet, spec: BackboneSpec) -> None:
        self.images, self.spec = images, spec
        self.readers = _file_readers(images)

    @property
    def from_files(self) -> bool:
        return self.readers is not None

    def split(self, name: SplitName) -> Split:
        return self.images.train if name == "train" else self.images.test

    def batches(
        self, name: SplitName, batch_size: int, positions: Sequence[int] | np.ndarray | None = None
    ) -> Iterator[torch.Tensor]:
        """(B, 3, S, S) uint8 of the split's images at `positions` (default: all), in order."""
        split = self.split(name)
        order = list(range(len(split))) if positions is None else [int(p) for p in positions]
        for start in range(0, len(order), batch_size):
            yield self._read(split, order[start : start + batch_size])

    def take(self, name: SplitName, positions: Sequence[int] | np.ndarray) -> torch.Tensor:
        """(N, 3, S, S) uint8 of the split's images at `positions`."""
        if len(positions) == 0:
            size = self.spec.input_size
            return torch.zeros(0, 3, size, size, dtype=torch.uint8)
        return torch.cat(list(self.batches(name, 256, positions)))

    def _read(self, split: Split, positions: list[int]) -> torch.Tensor:
        size = self.spec.input_size
        if self.readers is not None:
            readers = self.readers
            decoded = np.stack([_decode(readers[split.ids[p]](), size) for p in positions])
            return torch.from_numpy(decoded).permute(0, 3, 1, 2)
        small = torch.from_numpy(split.images[positions]).permute(0, 3, 1, 2).float()
        mode = "bicubic" if self.spec.interpolation == "bicubic" else "bilinear"
        big = F.interpolate(small, size=(size, size), mode=mode, antialias=True)
        return big.round().clamp(0, 255).to(torch.uint8)


def _file_readers(images: ImageSet) -> dict[str, Reader] | None:
    """Each image's own bytes by its id, where every image of both splits has a file (a folder
    or an archive of images) and the files hold more pixels than the run's decoded copy; None
    for CIFAR's pickled rows, and for files no larger than that copy (CIFAR's own 32x32 JPEGs):
    resizing the copy gives the same pixels without reading every file again."""
    ids = [*images.train.ids, *images.test.ids]
    source = Path(images.source)
    if (
        not ids
        or not source.exists()
        or _first_side(source, ids[0]) <= images.train.images.shape[1]
    ):
        return None
    try:
        members = dict(walk_members(source).members)
    except SalalError:
        return None
    return members if all(i in members for i in ids) else None


def _first_side(source: Path, name: str) -> int:
    """The longer side of the source's image `name` (0 where it cannot be read), without
    reading the rest of an archive's files."""
    try:
        if source.is_dir():
            return max(open_rgb(source / name).size)
        with tarfile.open(source, "r:*") as tar:
            member = tar.extractfile(name)
            return max(open_rgb(member.read()).size) if member is not None else 0
    except (KeyError, OSError, tarfile.TarError, Undecodable):
        return 0


def _decode(data: bytes, size: int) -> np.ndarray:
    """The file as the loader decoded it, at the backbone's size; a file that decoded then and
    does not now was changed on disk underneath the run."""
    try:
        return decode_image(data, size)
    except Undecodable as exc:
        raise SalalError(
            f"an image changed on disk while it was read ({exc}); start again"
        ) from None
