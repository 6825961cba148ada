"""Labels a person already has, brought into a run: a CSV of `path,class` (paths absolute or
relative to the CSV's folder) or an image-folder tree (`class/image`). Each image is matched to
the run's items by content digest, so copies and renamed files match; every label is checked
before any is written, and all are written in one transaction, journaled as `imported`."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .data.identity import content_digest
from .data.sources import IMAGE_SUFFIXES
from .errors import SalalError
from .oracle import Answer
from .records import StoredItem


@dataclass(frozen=True)
class GivenLabel:
    path: Path
    class_name: str
    where: str  # for the one-line error: "labels.csv line 7", or the file's path in a tree


def read_labels(source: Path) -> list[GivenLabel]:
    """The labels in a CSV, or in an image-folder tree (one folder per class)."""
    if source.is_dir():
        return [
            GivenLabel(path, path.parent.name, str(path))
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
    if rows and [c.strip().lower() for c in rows[0]] == ["path", "class"]:
        rows = rows[1:]
        first = 2
    else:
        first = 1
    out = []
    for n, row in enumerate(rows, first):
        if not row:
            continue
        if len(row) != 2:
            raise SalalError(f"{source.name} line {n}: expected path,class, found {row}")
        path = Path(row[0].strip()).expanduser()
        where = path if path.is_absolute() else source.parent / path
        out.append(GivenLabel(where, row[1].strip(), f"{source.name} line {n}"))
    return out


def match_labels(
    given: Sequence[GivenLabel], items: Sequence[StoredItem], class_names: Sequence[str]
) -> list[Answer]:
    """Answers for `given`, each on the run's item with the same content; the first problem is
    one line naming where it is, and nothing is returned."""
    if not given:
        raise SalalError("no labels found: a CSV of path,class, or a folder of class folders")
    by_digest = {i.digest: i.item for i in items}
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
            raise SalalError(
                f"{label.where}: {label.path} does not exist or cannot be read"
            ) from None
        item = by_digest.get(content_digest(data))
        if item is None:
            raise SalalError(
                f"{label.where}: {PurePosixPath(label.path)} is not one of this run's images "
                "(no image with its content)"
            )
        # No position: an imported label was never asked about in a load of the data.
        answers.append(Answer(-1, item, classes[label.class_name], 0, "imported", now))
    return answers
