"""Labels a person already has, brought into a run: a CSV of `path,class` (paths absolute or
relative to the CSV's folder) or an image-folder tree (`class/image`). Each image is matched to
the run's items by content digest (its bytes, or else its decoded pixels), so copies, renamed
files and salal's own exports match; every label is checked
before any is written, and all are written in one transaction, journaled as `imported`."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from salal_core.data.decode import IMAGE_SUFFIXES, Undecodable, open_rgb
from salal_core.data.identity import content_digest
from salal_core.errors import SalalError
from salal_core.run.oracle import Answer
from salal_core.run.records import StoredItem


@dataclass(frozen=True)
class GivenLabel:
    path: Path
    class_name: str
    where: str  # for the one-line error: "labels.csv line 7", or the file's path in a tree
    name: str  # as written: also how the run may know an item that is no file of its own
    # (an archive's member, a CIFAR row: the `source` column of salal-core export)


def read_labels(source: Path) -> list[GivenLabel]:
    """The labels in a CSV, or in an image-folder tree (one folder per class)."""
    if source.is_dir():
        return [
            GivenLabel(path, path.parent.name, str(path), str(path))
            for path in sorted(source.glob("*/*"))
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
        ]
    try:
        reader = csv.reader(source.read_text().splitlines())
        rows = list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise SalalError(f"cannot read {source} ({exc}); pass a CSV of path,class") from None
    except csv.Error as exc:  # a field past the csv module's limit (131,072 characters), ...
        raise SalalError(
            f"{source.name} line {reader.line_num}: {exc}; pass a CSV of path,class"
        ) from None
    header = [c.strip().lower() for c in rows[0]] if rows else []
    # A header names the columns: path,class, or salal-core export's own (source and class).
    path_column = next((header.index(c) for c in ("path", "source") if c in header), None)
    if path_column is not None and "class" in header:
        columns, rows, first = (path_column, header.index("class")), rows[1:], 2
    else:
        columns, first = (0, 1), 1
    out = []
    for n, row in enumerate(rows, first):
        if not row:
            continue
        if (first == 1 and len(row) != 2) or len(row) <= max(columns):
            raise SalalError(f"{source.name} line {n}: expected path,class, found {row}")
        text, class_name = row[columns[0]].strip(), row[columns[1]].strip()
        path = Path(text).expanduser()
        where = path if path.is_absolute() else source.parent / path
        out.append(GivenLabel(where, class_name, f"{source.name} line {n}", text))
    return out


def _pixel_digest(data: bytes) -> str:
    """The digest of the decoded RGB pixels, as `pixel_digests` gives a CIFAR row ("" when
    the bytes are not an image Pillow reads)."""
    try:
        pixels = np.asarray(open_rgb(data), dtype=np.uint8)
    except Undecodable:
        return ""
    return content_digest(np.ascontiguousarray(pixels).data)


def match_labels(
    given: Sequence[GivenLabel], items: Sequence[StoredItem], class_names: Sequence[str]
) -> list[Answer]:
    """Answers for `given`, each on the run's item with the same content: the same bytes, or
    else the same decoded pixels. Images that share their content are one image here: the
    label goes to the first of them in the source's order. The first problem is one line
    naming where it is, and nothing is returned."""
    if not given:
        raise SalalError("no labels found: a CSV of path,class, or a folder of class folders")
    by_digest = {i.digest: i.item for i in items}
    by_source = {i.source_id: i.item for i in items}
    classes = {name: n for n, name in enumerate(class_names)}
    now = time.time()
    answers = []
    for label in given:
        if label.class_name not in classes:
            raise SalalError(
                f"{label.where}: class {label.class_name!r} is not one of this run's "
                f"({', '.join(class_names)})"
            )
        try:
            data = label.path.read_bytes()
        except OSError:
            if label.name in by_source:  # the run's own name for an archive member or a row
                answers.append(_imported(by_source[label.name], classes[label.class_name], now))
                continue
            raise SalalError(
                f"{label.where}: {label.path} does not exist or cannot be read"
            ) from None
        item = by_digest.get(content_digest(data))
        if item is None:  # a re-encoded copy: known by its pixels (CIFAR rows, their PNGs)
            item = by_digest.get(_pixel_digest(data))
        if item is None:
            raise SalalError(
                f"{label.where}: {PurePosixPath(label.path)} is not one of this run's images "
                "(no image with its content)"
            )
        answers.append(_imported(item, classes[label.class_name], now))
    return answers


def _imported(item: int, label: int, now: float) -> Answer:
    # No position: an imported label was never asked about in a load of the data.
    return Answer(-1, item, label, 0, "imported", now)
