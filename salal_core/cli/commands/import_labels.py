"""`salal-core import-labels RUN_DIR FILE`: labels a person already has, into a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salal_core.cli.options import Subparsers
from salal_core.errors import SalalError
from salal_core.run.imports import match_labels, read_labels
from salal_core.run.store import RunStore


def import_labels(run_dir: Path, source: Path) -> tuple[int, int]:
    """Returns (labels imported, how many replaced a label the image had)."""
    if not source.exists():
        raise SalalError(f"{source} does not exist; pass a CSV of path,class or a class folder")
    store = RunStore(run_dir, create=False)  # the lock: not beside a running engine
    try:
        items = store.items()
        if not items:
            raise SalalError(
                f"{run_dir} has not read its images yet; start it once (or resume it), then import"
            )
        answers = match_labels(read_labels(source), items, store.class_names())
        before = store.labels()
        store.record_answers(answers)  # one transaction: all of them or none
        return len(answers), sum(1 for a in answers if a.item in before)
    finally:
        store.close()


def cmd_import_labels(args: argparse.Namespace) -> int:
    count, replaced = import_labels(args.run_dir, args.file)
    note = f" ({replaced} replaced an earlier label; the history keeps both)" if replaced else ""
    print(f"{count} labels imported into {args.run_dir}{note}", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("import-labels", help="labels you already have, matched by image content")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("file", type=Path, metavar="CSV|FOLDER", help="path,class rows, or class/image")
    p.set_defaults(func=cmd_import_labels)
