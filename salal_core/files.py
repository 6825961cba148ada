"""Writing a file that a later run reads: whole, or not at all; and reading a torch file a person
passed, safely."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` through a temporary file: fsync it, rename it over `path`, fsync the folder.

    A crash at any moment leaves either the old file or the new one, never half of one; the
    folder's fsync makes the rename itself survive a power cut. On failure the temporary file
    is removed and the OSError goes to the caller, which knows what to tell the user.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def read_payload_file(path: Path) -> Any:
    """`torch.load` of a file that may be anything a person passed: tensors and plain values
    only (weights_only), and quiet, so that a foreign pickle ends in the caller's one line
    rather than after torch's warnings about its protocol."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)
