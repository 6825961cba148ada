"""`salal-core review RUN_DIR`: the labels most worth a second look, in review order (the
method is in review.py: images labelers disagree on first, then suspects), as CSV; with a
ground truth, how many of the first 100 are wrong. `--labeler NAME`: one labeler's answers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from salal_core.cli.commands.output import render, write_text
from salal_core.cli.options import Subparsers
from salal_core.run.contents import OpenedRun
from salal_core.run.review import Doubt, review_doubts

FIELDS = [
    "rank", "index", "source", "given", "labeler", "guess", "p_given", "p_guess", "suspect",
    "disputed",
]  # fmt: skip
AT = 100


def precision_at(doubts: list[Doubt], truth: list[int], at: int = AT) -> tuple[float, float]:
    """(the share of the first `at` whose given label is wrong, the share a random order finds)."""
    wrong = [d.given != t for d, t in zip(doubts, truth, strict=True)]
    first = wrong[:at]
    return sum(first) / max(len(first), 1), sum(wrong) / max(len(wrong), 1)


def cmd_review(args: argparse.Namespace) -> int:
    run = OpenedRun.read(args.run_dir)
    matched = run.load_images()
    doubts, images = review_doubts(run, matched, args.device, args.labeler), matched.images
    names = images.class_names
    rows: list[dict[str, Any]] = [
        {
            "rank": n,
            "index": d.item,
            "source": str(images.original_path(d.position) or images.train.ids[d.position]),
            "given": names[d.given],
            "labeler": d.labeler,
            "guess": names[d.guess],
            "p_given": round(d.p_given, 4),
            "p_guess": round(d.p_guess, 4),
            "suspect": d.suspect,
            "disputed": " ".join(f"{who}:{names[label]}" for who, label in d.disputed),
        }
        for n, d in enumerate(doubts[: args.top or None], 1)
    ]
    text = render(rows, "csv", FIELDS)
    if args.out:
        write_text(args.out, text)
    else:
        sys.stdout.write(text)
    truth = [int(images.train.labels[d.position]) for d in doubts]
    suspects = sum(d.suspect for d in doubts)
    print(f"{len(doubts)} labels, {suspects} suspect", file=sys.stderr)
    if min(truth) >= 0 and any(d.given != t for d, t in zip(doubts, truth, strict=True)):
        k = min(AT, len(doubts))
        found, base = precision_at(doubts, truth, k)
        print(
            f"precision at {k}: {found:.2f} ({round(found * k)} of the first {k} labels are "
            f"wrong; a random order finds {base * k:.1f})",
            file=sys.stderr,
        )
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("review", help="the labels most worth a second look, first")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--top", type=int, default=0, metavar="N", help="only the first N (0: all)")
    p.add_argument("--out", type=Path, metavar="CSV", help="default: standard output")
    p.add_argument("--device", default="auto")
    p.add_argument("--labeler", default="", metavar="NAME", help="only this labeler's own answers")
    p.set_defaults(func=cmd_review)
