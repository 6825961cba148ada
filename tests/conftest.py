"""Shared fixtures: small image sets the tests draw themselves, and a slice of the shared pack.
Plain helpers are in helpers.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from helpers import SHARED_PACK, tar_folder, write_image_folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "shapes")


@pytest.fixture(scope="session")
def synthetic_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labeled image-folder tar.gz big enough for a few active-learning rounds."""
    base = tmp_path_factory.mktemp("synthetic")
    folder = write_image_folder(base / "folder", per_class_train=40, per_class_test=10)
    return tar_folder(folder, base / "synthetic.tar.gz")


@pytest.fixture(scope="session")
def shared_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 training and 10 test images per class from the shared CIFAR-10 pack, as a tar.gz."""
    if not SHARED_PACK.exists():
        pytest.fail(
            f"shared pack not found at {SHARED_PACK}; the tests expect the repository "
            "checked out beside shared/, as CI has it"
        )
    out = tmp_path_factory.mktemp("slice") / "cifar10-slice.tar.gz"
    keep = {"train": 30, "test": 10}
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(SHARED_PACK) as src, tarfile.open(out, "w:gz") as dst:
        for info in src:
            parts = Path(info.name).parts
            if not info.isfile() or len(parts) < 3:
                continue
            split, cls = parts[-3], parts[-2]
            if split not in keep or counts.get((split, cls), 0) >= keep[split]:
                continue
            counts[(split, cls)] = counts.get((split, cls), 0) + 1
            data = src.extractfile(info).read()
            info.name = "/".join(parts[-3:])
            dst.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
