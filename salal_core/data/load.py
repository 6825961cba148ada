"""Find, download, decode and cache a dataset: the second start loads 60,000 images in a second."""

from __future__ import annotations

import os
import sys
import tarfile
import time
import urllib.error
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from salal_core.config import DataConfig, RunConfig
from salal_core.data.cache import cache_key, load_cache, save_cache
from salal_core.data.cifar import is_cifar_pickles, read_cifar_pickles
from salal_core.data.identity import item_priority
from salal_core.data.skipped import SkippedFile, skipped_sentence
from salal_core.data.sources import ImageSet, read_image_tree
from salal_core.data.walk import walk_members
from salal_core.errors import SalalError
from salal_core.events import DataLoaded, Emit, Notice, ignore

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILENAME = "cifar-10-python.tar.gz"


def default_cache_dir() -> Path:
    """The platform's user cache folder, as platformdirs would choose it."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "salal"


def download_cifar10(cache_dir: Path, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> Path:
    """Fetch the official archive with torchvision's downloader; the checksum is verified."""
    from torchvision.datasets.utils import check_integrity, download_url

    target = cache_dir / CIFAR10_FILENAME
    if check_integrity(str(target), md5):
        return target
    try:
        download_url(url, str(cache_dir), CIFAR10_FILENAME, md5)
    except (urllib.error.URLError, OSError) as exc:
        raise SalalError(
            f"could not download CIFAR-10 ({exc}); pass --data PATH to a local "
            "cifar-10-python.tar.gz or an image folder"
        ) from None
    except RuntimeError as exc:  # torchvision: "File not found or corrupted."
        target.unlink(missing_ok=True)
        raise SalalError(
            f"the CIFAR-10 download failed its checksum ({exc}); try again or pass --data PATH"
        ) from None
    return target


def grown_slice(
    digests: Sequence[str],
    train_items: Collection[str],
    config: DataConfig,
    seed: int,
    emit: Emit,
) -> np.ndarray:
    """A resumed run's slice: every image it was created with that is still there, then
    images it has not had, up to `--train-limit`, first in the digest-seeded priority (the
    same ones join whatever order the source lists them in); one line says how many are
    left out."""
    keep = set(train_items)
    kept = [i for i, d in enumerate(digests) if d in keep]
    new = np.asarray([i for i, d in enumerate(digests) if d not in keep], dtype=np.int64)
    room = max(0, config.train_limit - len(kept))
    if len(new) > room:
        priority = item_priority([digests[i] for i in new], seed)
        emit(
            Notice(
                f"{len(new) - room} images of the source left out: this run's slice holds at most "
                f"{config.train_limit} images (--train-limit, fixed when the run was created)"
            )
        )
        new = new[np.argsort(priority, kind="stable")[:room]]
    return np.sort(np.concatenate([np.asarray(kept, dtype=np.int64), new]))


def balanced_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """`limit` indices, as even across classes as possible, seeded; sorted (global order kept)."""
    rng = np.random.default_rng(seed)
    if limit <= 0 or limit >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    chosen: list[int] = []
    rank = 0
    while len(chosen) < limit:  # round-robin over classes, one rank at a time
        for members in per_class:
            if rank < len(members) and len(chosen) < limit:
                chosen.append(int(members[rank]))
        rank += 1
    return np.sort(np.asarray(chosen))


def read_source(
    path: Path, size: int, progress: Callable[[int, int], None] | None = None
) -> ImageSet:
    """Recognise what an existing `path` holds and read it (`load_dataset` checks it exists)."""
    if path.is_file() and not tarfile.is_tarfile(path):
        raise SalalError(
            f"{path} is truncated or not a tar archive; pass a .tar/.tar.gz or a folder"
        )
    found = walk_members(path)  # one pass: re-reading a .tar.gz costs seconds
    if is_cifar_pickles([n for n, _ in found.members]):
        if size != 32:
            raise SalalError("CIFAR-10 pickles are 32x32; drop --image-size")
        data = read_cifar_pickles(path, found.members)
    else:
        data = read_image_tree(path, found.members, size, progress)
    data.skipped[:0] = found.skipped  # what could not be read as a file, before what was
    return data


def cache_folder(config: DataConfig) -> Path:
    """The decode and download cache folder, created if need be."""
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SalalError(
            f"cannot create cache folder {cache_dir} ({exc}); pass --cache-dir"
        ) from None
    return cache_dir


def load_dataset(
    config: DataConfig,
    seed: int = 0,
    emit: Emit = ignore,
    progress: Callable[[int, int], None] | None = None,
    train_items: Collection[str] | None = None,
    write_cache: bool = True,
) -> ImageSet:
    """Load the configured source through the decode cache, then take the configured slices.

    `train_items` (digests) is the slice a limited run was created with: a resumed run keeps
    exactly those images instead of drawing the slice again from a source that may have changed.
    `write_cache` False: rank 0 writes the cache; the other ranks read it, or decode for
    themselves where it is not (another node's local disk), and never write it.
    """
    start = time.perf_counter()
    cache_dir = cache_folder(config)
    path = Path(config.source).expanduser() if config.source else download_cifar10(cache_dir)
    if not path.exists():
        raise SalalError(f"{path} does not exist; pass --data PATH to CIFAR-10 or an image folder")
    key = cache_key(path, config.image_size)
    cache_file = cache_dir / f"decoded-{key}.npz"
    data = load_cache(cache_file)
    from_cache = data is not None
    if data is None:
        data = read_source(path, config.image_size, progress)
        if len(data.train) == 0:
            raise SalalError(f"no readable training images in {path}")
        try:
            if write_cache:
                save_cache(cache_file, data)
        except OSError as exc:
            emit(Notice(f"could not write the decode cache {cache_file} ({exc}); continuing"))
    if data.skipped:
        emit(Notice(skipped_sentence(data.skipped, path.name)))
    if config.train_limit and train_items is not None:
        data.train = data.train.take(
            grown_slice(data.train.digests, train_items, config, seed, emit)
        )
    elif config.train_limit:
        data.train = data.train.take(balanced_subset(data.train.labels, config.train_limit, seed))
    if config.test_limit:
        data.test = data.test.take(balanced_subset(data.test.labels, config.test_limit, seed))
    emit(
        DataLoaded(
            source=str(path),
            train_size=len(data.train),
            test_size=len(data.test),
            class_names=tuple(data.class_names),
            seconds=time.perf_counter() - start,
            from_cache=from_cache,
            skipped=len(data.skipped),
        )
    )
    return data


def load_for_run(
    config: RunConfig,
    class_names: Sequence[str] = (),
    train_items: Collection[str] | None = None,
    emit: Emit = ignore,
    write_cache: bool = True,
) -> ImageSet:
    """A run's images: the source through the cache, with `--classes` named for a folder that
    has no class folders of its own (and refused for one that has split folders), and at least
    two classes to tell apart."""
    images = load_dataset(
        config.data, config.seed, emit, train_items=train_items, write_cache=write_cache
    )
    source = Path(images.source).name
    if class_names:
        if images.layout == "class folders" and images.class_names != list(class_names):
            _folders_as_pool(images, class_names, emit)
        if images.class_names and images.class_names != list(class_names):
            raise SalalError(
                f"this source names its own classes ({', '.join(images.class_names)}); "
                "drop --classes, which is for folders without class folders"
            )
        images.class_names = list(class_names)
    if not images.class_names:
        raise SalalError(
            f"{source} has no class folders (train/<class>/, or <class>/ with every image one "
            "folder deep); name the classes with --classes cat,dog,... or --classes-file FILE"
        )
    if len(images.class_names) < 2:
        raise SalalError(
            f"{source} has one class ({images.class_names[0]}); a classifier needs at least two "
            "classes: add a folder of images for another class"
        )
    return images


def _folders_as_pool(images: ImageSet, class_names: Sequence[str], emit: Emit) -> None:
    """Folders `--classes` says are not classes (a pool kept by date, say): no image is labeled
    by its folder, and, as in any pool, an image is read once (a class-folder decode keeps
    copies, each with its folder's label)."""
    train, first = images.train, dict[str, int]()
    for position, digest in enumerate(train.digests):
        first.setdefault(digest.split("~")[0], position)  # a copy's digest is `digest~n`
    kept = sorted(first.values())
    copies = [train.ids[i] for i in sorted(set(range(len(train))) - set(kept))]
    images.skipped.extend(SkippedFile(name, "duplicate") for name in copies)
    taken = train.take(np.asarray(kept, dtype=np.int64))
    images.train = replace(taken, labels=np.full(len(taken), -1, np.int64))
    folders = ", ".join(images.class_names)
    images.class_names, images.layout = [], "pool"
    also = f"; {len(copies)} duplicate{'s' * (len(copies) != 1)} skipped" if copies else ""
    emit(
        Notice(
            f"the folders of {Path(images.source).name} ({folders}) are not the classes named "
            f"({', '.join(class_names)}): no image is labeled by its folder{also}",
            level="info",
        )
    )


FOLDERS_NAMED = 8  # folders a notice names before it counts the rest


def folder_classes_notice(images: ImageSet, initial_fraction: float) -> Notice | None:
    """What a new run over class folders with no train/ level is told: which folders it takes
    as classes, how many of their images it labels by folder to start with, and what to do if
    they are not classes (a pool kept by date or camera, say). None for any other source."""
    if images.layout != "class folders":
        return None
    names = images.class_names[:FOLDERS_NAMED]
    more = len(images.class_names) - len(names)
    folders = ", ".join(names) + (f" and {more} more" if more else "")
    labels = (
        f", and {initial_fraction:.0%} of their images as labels to start with"
        if initial_fraction > 0
        else ""
    )
    return Notice(
        f"the folders {folders} of {Path(images.source).name} are taken as classes{labels}; if "
        "they are not classes, name the classes with --classes",
        level="info",
    )
