"""`salal-core export RUN_DIR`: each labeled item, its class, who labeled it, when, which round."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.load import load_for_run
from ..errors import SalalError
from ..labels import RunItems
from ..options import Subparsers
from ..store import FORMAT_VERSION, RunStore
from .output import render, write_text

FIELDS = ["index", "source", "label", "class", "oracle", "round", "time"]


def export_rows(run_dir: Path, history: bool = False) -> list[dict[str, Any]]:
    """One row per labeled item (`index` is the run's item id); `source` is the image's file
    where it has one of its own (an image folder), else its id in the source (an archive
    member, a CIFAR batch row). With `history`, every label ever given, in the order given,
    `current` saying which one stands. Runs of every format export reads are accepted."""
    # Reading is safe beside a live run, and needs neither the lock nor the data.
    store = RunStore(run_dir, create=False, lock=False, read_only=True)
    try:
        sources, names = store.sources(), store.class_names()
        root = Path(store.load_config().data.source or "")
        current = store.labels()
        if history:
            given = [r for r in store.journal_rows() if r.kind == "label"]
            latest = {r.item: r.time for r in current.values()}
            records = [(r.item, r.label or 0, r.oracle or "", r.round or 0, r.time) for r in given]
        else:
            by_item = sorted(current.values(), key=lambda r: r.item)
            records = [(r.item, r.label, r.oracle, r.round, r.time) for r in by_item]
    finally:
        store.close()

    def source(item: int) -> str:
        found = sources.get(item, "")
        return str(root / found) if found and root.is_dir() else found

    rows = []
    for item, label, oracle, round_, time in records:
        row: dict[str, Any] = {
            "index": item,
            "source": source(item),
            "label": label,
            "class": names[label] if 0 <= label < len(names) else "",
            "oracle": oracle,
            "round": round_,
            "time": dt.datetime.fromtimestamp(time, dt.UTC).isoformat(timespec="milliseconds"),
        }
        if history:
            row["current"] = latest.get(item) == time
        rows.append(row)
    return rows


def export_imagefolder(run_dir: Path, out: Path, copy: bool) -> tuple[int, int]:
    """DIR/class/file for every labeled image: links to a folder source's files (or copies),
    PNGs of what the model sees for sources that are not files (archive members, CIFAR rows).
    Returns (written, missing: labeled images no longer in the source)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SalalError(f"{out} exists and is not empty; pass a new or empty folder")
    rows = export_rows(run_dir)
    store = RunStore(run_dir, create=False, lock=False, read_only=True)
    try:
        config = store.load_config()
        names = store.class_names()
        stored = store.items() if store.format == FORMAT_VERSION else []
    finally:
        store.close()
    files = Path(config.data.source or "").is_dir()
    pixels: dict[int, np.ndarray] = {}
    if not files:  # decode (from the cache) to write what the model sees
        images = load_for_run(config, names, [s.digest for s in stored] or None)
        where = RunItems.resolve(stored, images.train).positions()
        pixels = {item: images.train.images[p] for item, p in where.items()}
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
