"""Image sources: CIFAR-10 pickles (archive or folder), image folders and their tar archives.

Every source becomes an `ImageSet` of uint8 (N, H, W, 3) arrays. Archives are read in memory,
never extracted, and members that would escape the archive are refused all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from salal_core.data.decode import IMAGE_SUFFIXES, Undecodable, decode_image
from salal_core.data.identity import content_digest, unique_digests
from salal_core.data.skipped import SkippedFile
from salal_core.data.walk import Member, walk_members
from salal_core.errors import SalalError

SPLITS = ("train", "test")


@dataclass
class Split:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64; -1 where no label is known
    ids: list[str]  # where each image came from: file path in the source, or "batch:row"
    digests: list[str]  # what each image is: its content digest (see identity.py)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Split:
        return Split(
            self.images[indices],
            self.labels[indices],
            [self.ids[i] for i in indices],
            [self.digests[i] for i in indices],
        )


# Where a source's classes come from: its splits (CIFAR's batches, `train/<class>/`), class
# folders with no train/ level (`<class>/<image>`), or nowhere (a pool, labeled by people).
Layout = Literal["splits", "class folders", "pool"]
LAYOUTS: tuple[Layout, ...] = ("splits", "class folders", "pool")


@dataclass
class ImageSet:
    train: Split
    test: Split
    class_names: list[str]
    source: str
    skipped: list[SkippedFile] = field(default_factory=list)  # files of the source not read
    layout: Layout = "splits"

    @property
    def has_labels(self) -> bool:
        return bool((self.train.labels >= 0).any())

    def original_path(self, index: int) -> Path | None:
        """The file training image `index` was decoded from, where it is a file of its own
        (a folder source); archive members and CIFAR rows have none."""
        path = Path(self.source) / self.train.ids[index]
        return path if path.is_file() else None  # a CIFAR row id names no file

    @property
    def has_test(self) -> bool:
        """A labeled test split to measure accuracy on (without one, labels are held out)."""
        return len(self.test) > 0 and bool((self.test.labels >= 0).all())


def empty_split(image_size: int) -> Split:
    return Split(np.zeros((0, image_size, image_size, 3), np.uint8), np.zeros(0, np.int64), [], [])


# --------------------------------------------------------------------------- image folders


def _strip_common_root(paths: list[str]) -> int:
    """How many leading folders all paths share (an archive's top folder, say)."""
    parts = [PurePosixPath(p).parts for p in paths]
    depth = 0
    while all(len(p) > depth + 1 for p in parts) and len({p[depth] for p in parts}) == 1:
        if parts[0][depth] in SPLITS:
            break
        depth += 1
    return depth


def _class_folders(rel: list[PurePosixPath]) -> list[str]:
    """The classes of a tree shaped `<class>/<image>` with no train/ level: every image one
    folder deep, in two folders or more, none named train or test; [] for any other shape."""
    folders = {p.parts[0] for p in rel}
    if len(folders) < 2 or folders & set(SPLITS) or any(len(p.parts) != 2 for p in rel):
        return []
    return sorted(folders)


def read_image_tree(
    path: Path, members: list[Member], size: int, progress: Callable[[int, int], None] | None = None
) -> ImageSet:
    """`train/<class>/*` and `test/<class>/*`; `<class>/*`, read as the training split; or any
    tree of images without class folders."""
    members = [
        (n, r)
        for n, r in members
        if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES
        and not PurePosixPath(n).name.startswith(".")
    ]
    if not members:
        raise SalalError(
            f"no images found in {path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    depth = _strip_common_root([n for n, _ in members])
    rel = [PurePosixPath(*PurePosixPath(n).parts[depth:]) for n, _ in members]
    labeled = any(len(p.parts) >= 3 and p.parts[0] == "train" for p in rel)

    skipped: list[SkippedFile] = []
    if labeled:
        split_classes = {
            s: sorted({p.parts[1] for p in rel if len(p.parts) >= 3 and p.parts[0] == s})
            for s in SPLITS
        }
        class_names = split_classes["train"]
        if split_classes["test"] and split_classes["test"] != class_names:
            raise SalalError(
                f"{path}: test/ has classes {split_classes['test']} but train/ has "
                f"{class_names}; give both splits the same class folders"
            )
        index = {c: i for i, c in enumerate(class_names)}
        out = {}
        for s in SPLITS:
            chosen = [
                (m, p)
                for m, p in zip(members, rel, strict=True)
                if len(p.parts) >= 3 and p.parts[0] == s
            ]
            out[s] = _decode_members(
                [(m[0], m[1], index[p.parts[1]]) for m, p in chosen],
                size,
                skipped,
                progress,
                dedupe=False,
            )
        return ImageSet(out["train"], out["test"], class_names, str(path), skipped)

    class_names = _class_folders(rel)
    if class_names:
        index = {c: i for i, c in enumerate(class_names)}
        train = _decode_members(
            [(n, r, index[p.parts[0]]) for (n, r), p in zip(members, rel, strict=True)],
            size,
            skipped,
            progress,
            dedupe=False,
        )
        empty = empty_split(size)
        return ImageSet(train, empty, class_names, str(path), skipped, "class folders")

    pool = _decode_members([(n, r, -1) for n, r in members], size, skipped, progress, dedupe=True)
    return ImageSet(pool, empty_split(size), [], str(path), skipped, "pool")


def read_images(path: Path, size: int) -> tuple[Split, list[SkippedFile]]:
    """Every image file under `path` (a folder or an archive), decoded, copies included: what a
    trained model is asked about. What cannot be read or decoded is skipped and named."""
    found = walk_members(path)
    members = [
        (n, r, -1)
        for n, r in found.members
        if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES
        and not PurePosixPath(n).name.startswith(".")
    ]
    skipped = list(found.skipped)
    return _decode_members(members, size, skipped, None, dedupe=False), skipped


def _decode_members(
    items: list[tuple[str, Callable[[], bytes], int]],
    size: int,
    skipped: list[SkippedFile],
    progress: Callable[[int, int], None] | None,
    dedupe: bool,
) -> Split:
    """Decode, skipping and naming unreadable, too small and (for pools) duplicate files."""
    images, labels, ids, digests, seen = [], [], [], [], set()
    for i, (name, read, label) in enumerate(items):
        try:
            data = read()
        except OSError:  # gone or locked since the folder was listed
            skipped.append(SkippedFile(name, "unreadable"))
            continue
        digest = content_digest(data)
        if dedupe:
            if digest in seen:
                skipped.append(SkippedFile(name, "duplicate"))
                continue
            seen.add(digest)
        try:
            images.append(decode_image(data, size))
        except Undecodable as exc:
            skipped.append(SkippedFile(name, exc.reason))
            continue
        labels.append(label)
        ids.append(name)
        digests.append(digest)
        if progress and i % 1000 == 0:
            progress(i, len(items))
    if not images:
        return empty_split(size)
    return Split(np.stack(images), np.asarray(labels, np.int64), ids, unique_digests(digests))
