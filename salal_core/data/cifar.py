"""CIFAR-10 as its authors ship it: pickled batches, in the official archive or extracted."""

from __future__ import annotations

import io
import pickle
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np

from salal_core.data.identity import pixel_digests
from salal_core.data.sources import ImageSet, Split
from salal_core.data.walk import Member
from salal_core.errors import SalalError


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without running arbitrary code: only numpy arrays are allowed."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")


def _unpickle(data: bytes, name: str) -> dict[str, Any]:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any malformed pickle is the same problem to the user
        raise SalalError(f"{name} is not a readable CIFAR batch ({exc})") from None
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def is_cifar_pickles(names: list[str]) -> bool:
    return any(PurePosixPath(n).name == "data_batch_1" for n in names)


def read_cifar_pickles(path: Path, members: list[Member]) -> ImageSet:
    """The official `cifar-10-python.tar.gz`, or its extracted `cifar-10-batches-py/`."""
    blobs = {
        PurePosixPath(n).name: read()
        for n, read in members
        if PurePosixPath(n).name.startswith(("data_batch_", "test_batch", "batches.meta"))
    }
    batches = sorted(n for n in blobs if n.startswith("data_batch_"))
    if "test_batch" not in blobs or not batches:
        raise SalalError(f"{path} lacks data_batch_* or test_batch; is it cifar-10-python?")

    def split(names: list[str]) -> Split:
        images: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        ids: list[str] = []
        for n in names:
            d = _unpickle(blobs[n], n)
            data = np.asarray(d["data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(d["labels"], dtype=np.int64))
            ids.extend(f"{n}:{row}" for row in range(len(data)))
        pixels = np.ascontiguousarray(np.concatenate(images))
        return Split(pixels, np.concatenate(labels), ids, pixel_digests(pixels))

    names = [f"class_{i}" for i in range(10)]
    if "batches.meta" in blobs:
        meta = _unpickle(blobs["batches.meta"], "batches.meta")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta["label_names"]]
    return ImageSet(split(batches), split(["test_batch"]), names, str(path))
