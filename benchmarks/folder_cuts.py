"""The folders of the small-folders study: class-balanced image folders cut from the shared
CIFAR-10 pack, and scikit-learn's handwritten digits written as one, each written once."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Folder:
    """A folder the study runs on: its name in the report, and where its class folders are."""

    name: str
    path: Path


def cut_pack(pack: Path, out: Path, per_class: int, test_total: int, seed: int = 0) -> Path:
    """A class-balanced image folder of `per_class` training images a class and `test_total`
    test images, drawn with a seed (the pack is ordered by class), written once."""
    if (out / "train").exists():
        return out
    members: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
    with tarfile.open(pack) as tar:
        infos = [i for i in tar if i.isfile() and len(Path(i.name).parts) >= 3]
        for info in infos:
            split, cls = Path(info.name).parts[-3:-1]
            members.setdefault((split, cls), []).append(info)
        rng = np.random.default_rng(seed)
        classes = sorted({cls for _, cls in members})
        wanted = {"train": per_class, "test": test_total // len(classes)}
        chosen = [
            (split, cls, found[i])
            for (split, cls), found in sorted(members.items())
            if split in wanted
            for i in rng.permutation(len(found))[: wanted[split]]
        ]
        # In the archive's order: a gzip stream seeks back only by decompressing from the start.
        for split, cls, info in sorted(chosen, key=lambda c: c[2].offset):
            data = tar.extractfile(info)
            assert data is not None
            target = out / split / cls / Path(info.name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.read())
    return out


def write_digits(out: Path, test_total: int = 497) -> Path:
    """scikit-learn's handwritten digits (1,797 8x8 images) as an image folder with a seeded
    held-out split; needs the `study` extra (scikit-learn) once, to write the folder."""
    if (out / "train").exists():
        return out
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit("the digits need scikit-learn: pip install -e '.[study]'") from None
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    for rank, i in enumerate(order):
        split = "test" if rank < test_total else "train"
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        target = out / split / str(digits.target[i]) / f"{i:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target)
    return out
