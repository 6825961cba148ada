"""`salal-core export RUN_DIR`: each labeled item, its class, who labeled it (the oracle, and the
person: the labeler), when, which round."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from salal_core.cli.commands.output import render, write_text
from salal_core.cli.options import Subparsers
from salal_core.data.identity import content_digest
from salal_core.data.walk import walk_members
from salal_core.errors import SalalError
from salal_core.run.contents import OpenedRun
from salal_core.run.records import StoredItem
from salal_core.run.store import RunStore

FIELDS = ["index", "source", "label", "class", "oracle", "labeler", "round", "time"]


def export_rows(run_dir: Path, history: bool = False) -> list[dict[str, Any]]:
    """One row per labeled item (`index` is the run's item id); `source` is the image's file
    where it has one of its own (an image folder), else its id in the source (an archive
    member, a CIFAR batch row). With `history`, every label ever given, in the order given,
    `current` saying which one counts (with several labelers, each person's answer is a row of
    its own). Runs of every format export reads are accepted."""
    # Reading is safe beside a live run, and needs neither the lock nor the data.
    store = RunStore(run_dir, create=False, lock=False, read_only=True)
    try:
        sources, names = store.sources(), store.class_names()
        root = Path(store.load_config().data.source or "")
        current = store.labels()
        if history:
            given = [r for r in store.journal_rows() if r.kind == "label"]
            counting = {(r.item, r.labeler, r.time) for r in current.values()}
            records = [
                (r.item, r.label or 0, r.oracle or "", r.labeler, r.round or 0, r.time)
                for r in given
            ]
        else:
            by_item = sorted(current.values(), key=lambda r: r.item)
            records = [(r.item, r.label, r.oracle, r.labeler, r.round, r.time) for r in by_item]
    finally:
        store.close()

    # A folder of images: each item's file. CIFAR batches in a folder: the row's own name
    # ("data_batch_1:7"), which is how the run knows it (and how a CSV import finds it).
    files = root.is_dir() and not (root / "data_batch_1").exists()

    def source(item: int) -> str:
        found = sources.get(item, "")
        return str(root / found) if found and files else found

    rows = []
    for item, label, oracle, labeler, round_, time in records:
        row: dict[str, Any] = {
            "index": item,
            "source": source(item),
            "label": label,
            "class": names[label] if 0 <= label < len(names) else "",
            "oracle": oracle,
            "labeler": labeler,
            "round": round_,
            "time": dt.datetime.fromtimestamp(time, dt.UTC).isoformat(timespec="milliseconds"),
        }
        if history:
            row["current"] = (item, labeler, time) in counting
        rows.append(row)
    return rows


def export_imagefolder(run_dir: Path, out: Path, copy: bool) -> tuple[int, int]:
    """DIR/class/file for every labeled image: links to a folder source's files (or copies),
    an archive's members as they are, PNGs of a CIFAR row's pixels: each imports back onto a
    run over the same source.
    Returns (written, missing: labeled images no longer in the source)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SalalError(f"{out} exists and is not empty; pass a new or empty folder")
    rows = export_rows(run_dir)
    run = OpenedRun.read(run_dir, any_format=True)
    stored = run.items
    source_path = Path(run.config.data.source or "")
    files = source_path.is_dir() and not (source_path / "data_batch_1").exists()
    pixels: dict[int, np.ndarray] = {}
    members: dict[int, tuple[str, bytes]] = {}
    if source_path.is_file() and tarfile.is_tarfile(source_path):
        # An archive's members as they are (the photo's own bytes, not a 32x32 re-encoding):
        # what imports back onto a run over the same archive, byte for byte.
        members = _labeled_members(source_path, stored, {row["index"] for row in rows})
    if not files and len(members) < len(rows):
        # CIFAR rows (no file of their own): PNGs of the pixels, which import by their pixels.
        matched = run.load_images()
        train = matched.images.train
        pixels = {item: train.images[p] for item, p in matched.positions().items()}
    written = missing = 0
    for row in rows:
        folder = out / row["class"]
        folder.mkdir(parents=True, exist_ok=True)
        source = Path(row["source"])
        if files and source.is_file():
            target = _free_name(folder / source.name, row["index"])
            if copy:
                shutil.copy2(source, target)
            else:
                target.symlink_to(source.resolve())
        elif row["index"] in members:
            name, data = members[row["index"]]
            target = _free_name(folder / PurePosixPath(name).name, row["index"])
            target.write_bytes(data)
        elif not files and row["index"] in pixels:
            target = _free_name(
                folder / (Path(row["source"]).stem or str(row["index"])), row["index"]
            )
            Image.fromarray(pixels[row["index"]]).save(target.with_suffix(".png"))
        else:
            missing += 1
            continue
        written += 1
    return written, missing


def _labeled_members(
    archive: Path, stored: Sequence[StoredItem], labeled: set[int]
) -> dict[int, tuple[str, bytes]]:
    """Labeled item -> (member name, its bytes), found by content in one pass over the archive
    (the first member with an item's content, as reading the archive assigns them)."""
    wanted = {s.digest: s.item for s in stored if s.item in labeled}
    found: dict[int, tuple[str, bytes]] = {}
    copies: dict[str, int] = {}
    for name, read in walk_members(archive).members:
        data = read()
        digest = content_digest(data)
        n = copies.get(digest, 0)
        copies[digest] = n + 1
        item = wanted.get(digest if n == 0 else f"{digest}~{n}")
        if item is not None:
            found[item] = (name, data)
    return found


def _free_name(path: Path, item: int) -> Path:
    """`path`, or with the item id added when two labeled files share a name."""
    return path if not path.exists() else path.with_name(f"{path.stem}-{item}{path.suffix}")


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "imagefolder":
        if args.output is None:
            raise SalalError("--format imagefolder needs -o DIR, the folder to write")
        written, missing = export_imagefolder(args.run_dir, args.output, args.copy)
        gone = f" ({missing} labeled images are no longer in the source)" if missing else ""
        print(f"{written} images -> {args.output}/CLASS/{gone}", file=sys.stderr)
        return 0
    rows = export_rows(args.run_dir, args.history)
    text = render(rows, args.format, [*FIELDS, "current"] if args.history else FIELDS)
    if args.output:
        write_text(args.output, text)
        print(f"{len(rows)} labels -> {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("export", help="the labels of a run as CSV, JSON or an image folder")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--format", choices=["csv", "json", "imagefolder"], default="csv")
    p.add_argument("--output", "-o", type=Path, metavar="FILE|DIR", help="default: standard output")
    p.add_argument(
        "--copy", action="store_true", help="imagefolder: copy the files instead of linking them"
    )
    p.add_argument(
        "--history", action="store_true", help="every label ever given, not just the latest"
    )
    p.set_defaults(func=cmd_export)
