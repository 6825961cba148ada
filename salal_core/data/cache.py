"""The decode cache: a source decoded once into uint8 arrays in one .npz, named by a key that
changes whenever the source's content, the image size or the decoded layout does."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from salal_core.data.skipped import skipped_file
from salal_core.data.sources import LAYOUTS, ImageSet, Split
from salal_core.data.walk import scan_folder
from salal_core.files import atomic_write

# Bump when the decoded layout changes, so old caches are not reused (2: digests; 3: skipped
# files by name; 4: EXIF orientation, 16-bit scaled, transparency on white, .tif; 5: layouts,
# class folders without train/, linked folders).
CACHE_FORMAT = 5


def cache_key(path: Path, image_size: int) -> str:
    """The name part of a source's cache file: its fingerprint, the image size, the format."""
    return f"{fingerprint(path)}-{image_size}-v{CACHE_FORMAT}"


def fingerprint(path: Path) -> str:
    """A key that changes whenever the source's content does: an archive's bytes, or every
    name, size and modification time under a folder (and what it skips, and why)."""
    h = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    else:
        scan = scan_folder(path)
        for file in scan.files:
            h.update(f"{file.name}\0{file.size}\0{file.mtime_ns}\n".encode())
        for skipped in scan.skipped:
            h.update(f"{skipped.path}\0{skipped.reason}\n".encode())
    return h.hexdigest()[:24]


def save_cache(path: Path, data: ImageSet) -> None:
    def write(f: BinaryIO) -> None:
        np.savez(
            f,
            train_images=data.train.images,
            train_labels=data.train.labels,
            train_ids=np.asarray(data.train.ids, dtype=str),
            train_digests=np.asarray(data.train.digests, dtype=str),
            test_images=data.test.images,
            test_labels=data.test.labels,
            test_ids=np.asarray(data.test.ids, dtype=str),
            test_digests=np.asarray(data.test.digests, dtype=str),
            class_names=np.asarray(data.class_names, dtype=str),
            source=np.asarray(data.source),
            layout=np.asarray(data.layout),
            skipped_paths=np.asarray([s.path for s in data.skipped], dtype=str),
            skipped_reasons=np.asarray([s.reason for s in data.skipped], dtype=str),
        )

    atomic_write(path, write)


def load_cache(path: Path) -> ImageSet | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            skipped = [
                skipped_file(name, reason)
                for name, reason in zip(
                    z["skipped_paths"].tolist(), z["skipped_reasons"].tolist(), strict=True
                )
            ]
            layout = next((known for known in LAYOUTS if known == str(z["layout"])), None)
            if layout is None:
                return None
            return ImageSet(
                Split(
                    z["train_images"],
                    z["train_labels"],
                    z["train_ids"].tolist(),
                    z["train_digests"].tolist(),
                ),
                Split(
                    z["test_images"],
                    z["test_labels"],
                    z["test_ids"].tolist(),
                    z["test_digests"].tolist(),
                ),
                z["class_names"].tolist(),
                str(z["source"]),
                skipped,
                layout,
            )
    except (OSError, ValueError, KeyError):
        return None  # a torn or old cache file: decode again
