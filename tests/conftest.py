"""Shared fixtures: small image sets the tests draw themselves, and a slice of the shared pack."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from salal_core.config import PRESETS, with_overrides
from salal_core.data.device_data import DeviceData
from salal_core.data.sources import ImageSet, Split

ROOT = Path(__file__).resolve().parents[1]
SHARED_PACK = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CLASSES = ["red", "green", "blue", "yellow"]
PALETTE = np.array([[220, 40, 40], [40, 200, 60], [40, 60, 220], [230, 220, 40]])


def draw(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A class colour, lit from above (a cue for which way is up), with a dark mark top-left."""
    light = np.linspace(1.0, 0.35, size)[:, None, None]
    img = PALETTE[label][None, None, :] * light + rng.normal(0, 12, (size, size, 3))
    img[2:8, 2:12] = 20  # an asymmetric mark, so every quarter turn looks different
    return np.clip(img, 0, 255).astype(np.uint8)


def drawn_data(n: int = 48, device: torch.device | str = "cpu") -> DeviceData:
    """`n` random images with labels of four classes, on `device`, train and test alike."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    split = Split(images, rng.integers(0, 4, n), [str(i) for i in range(n)])
    return DeviceData(ImageSet(split, split, ["a", "b", "c", "d"], "drawn"), torch.device(device))


def write_image_folder(
    root: Path, per_class_train: int = 12, per_class_test: int = 4, seed: int = 0, fmt: str = "png"
) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class_train), ("test", per_class_test)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(draw(label, rng)).save(folder / f"{i:04d}.{fmt}")
    return root


FORMATS = ["png", "jpg", "webp", "bmp", "gif"]


def write_unlabeled_folder(root: Path, per_class: int = 50, seed: int = 1) -> Path:
    """A pool as people have them: no class folders, nested folders, mixed formats and sizes,
    the class only in the file name (for the tests' eyes), and four files that must be
    skipped: a corrupt JPEG, a duplicate, a 4x4 image and a text file."""
    rng = np.random.default_rng(seed)
    n = 0
    for _ in range(per_class):
        for label, name in enumerate(CLASSES):
            folder = root / f"shoot-{n % 3}" / ("deep" if n % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            side = (32, 48, 64)[n % 3]
            fmt = FORMATS[n % len(FORMATS)]
            Image.fromarray(draw(label, rng, side)).save(folder / f"{n:04d}-{name}.{fmt}")
            n += 1
    (root / "shoot-0" / "broken-red.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("taken in the garden")
    first = next(iter(sorted((root / "shoot-0").glob("0000-*"))))
    (root / "shoot-1" / f"copy-of-{first.name}").write_bytes(first.read_bytes())
    Image.new("RGB", (4, 4), (200, 30, 30)).save(root / "tiny-red.png")
    return root


def class_from_name(source_id: str) -> int:
    """The class a test image was drawn as, from its file name (0000-red.png -> 0)."""
    return CLASSES.index(Path(source_id).stem.split("-")[-1])


def tar_folder(folder: Path, out: Path, arcname: str = "pack") -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return out


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


def tiny_config(source: Path, cache: Path, **overrides):
    """The tiny preset narrowed further, so a whole run takes seconds on two cores."""
    base = {
        "device": "cpu",
        "data.source": str(source),
        "data.cache_dir": str(cache),
        "data.train_limit": 0,
        "data.test_limit": 0,
        "model.width": 4,
        "pretrain.epochs": 1,
        "pretrain.optim.batch_size": 32,
        "active.epochs_per_round": 1,
        "active.optim.batch_size": 32,
        "active.query_size": 0.1,
    }
    base.update(overrides)
    return with_overrides(PRESETS["tiny"], base)
