"""`salal-core export RUN_DIR`: each labeled item, its class, who labeled it, when, which round."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from ..options import Subparsers
from ..store import RunStore
from .output import render, write_text

FIELDS = ["index", "source", "label", "class", "oracle", "round", "time"]


def export_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per labeled item (`index` is the run's item id); `source` is the image's file
    where it has one of its own (an image folder), else its id in the source (an archive
    member, a CIFAR batch row). Runs of every format export reads are accepted."""
    # Reading is safe beside a live run, and needs neither the lock nor the data.
    store = RunStore(run_dir, create=False, lock=False, read_only=True)
    try:
        sources, names = store.sources(), store.class_names()
        root = Path(store.load_config().data.source or "")

        def source(item: int) -> str:
            found = sources.get(item, "")
            return str(root / found) if found and root.is_dir() else found

        return [
            {
                "index": r.item,
                "source": source(r.item),
                "label": r.label,
                "class": names[r.label] if 0 <= r.label < len(names) else "",
                "oracle": r.oracle,
                "round": r.round,
                "time": dt.datetime.fromtimestamp(r.time, dt.UTC).isoformat(
                    timespec="milliseconds"
                ),
            }
            for r in sorted(store.labels().values(), key=lambda r: r.item)
        ]
    finally:
        store.close()


def cmd_export(args: argparse.Namespace) -> int:
    rows = export_rows(args.run_dir)
    text = render(rows, args.format, FIELDS)
    if args.output:
        write_text(args.output, text)
        print(f"{len(rows)} labels -> {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("export", help="the labels of a run as CSV or JSON")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="default: standard output")
    p.set_defaults(func=cmd_export)
