"""`salal-core agreement RUN_DIR`: how far a run's labelers agree: each one's count, the
observed agreement, Cohen's kappa for every pair, Fleiss' kappa over the images answered more
than once, and the images most disagreed on (run/agreement.py computes them)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from salal_core import json_text
from salal_core.cli.options import Subparsers
from salal_core.run.agreement import Agreement, measure, people_answers
from salal_core.run.store import RunStore


def run_agreement(run_dir: Path, top: int = 10) -> tuple[Agreement, list[str], dict[int, str]]:
    """The figures over the labels people gave, the class names and each item's source;
    safe beside a live run."""
    store = RunStore(run_dir, create=False, lock=False, read_only=True)
    try:
        votes = store.votes()
        names, sources = store.class_names(), store.sources()
    finally:
        store.close()
    return measure(people_answers(votes), max(len(names), 1), top), names, sources


def _figure(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3f}"


def show(agreement: Agreement, names: list[str], sources: dict[int, str], console: Console) -> None:
    def name(label: int) -> str:
        return names[label] if 0 <= label < len(names) else str(label)

    counts = Table("labeler", "answers", title="labelers")
    for count in agreement.labelers:
        counts.add_row(count.labeler, str(count.answers))
    console.print(counts)
    console.print(
        f"{agreement.overlapping} images answered more than once: observed agreement "
        f"{_figure(agreement.observed)}, Fleiss' kappa {_figure(agreement.fleiss)}"
    )
    if agreement.pairs:
        pairs = Table("labelers", "images", "observed", "Cohen's kappa", title="pairs")
        for pair in agreement.pairs:
            pairs.add_row(
                f"{pair.first} / {pair.second}",
                str(pair.images),
                _figure(pair.observed),
                _figure(pair.kappa),
            )
        console.print(pairs)
    if agreement.disputed:
        disputed = Table("item", "source", "answers", "agreement", title="most disagreed on")
        for image in agreement.disputed:
            given = ", ".join(f"{who}: {name(label)}" for who, label in image.answers)
            disputed.add_row(
                str(image.item), sources.get(image.item, ""), given, f"{image.agreement:.2f}"
            )
        console.print(disputed)


def cmd_agreement(args: argparse.Namespace) -> int:
    agreement, names, sources = run_agreement(args.run_dir, args.top)
    if args.json:
        print(json_text.dumps(dataclasses.asdict(agreement), indent=1))
    else:
        show(agreement, names, sources, Console())
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("agreement", help="how far a run's labelers agree (kappas, disputes)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--top", type=int, default=10, metavar="N", help="disputed images to list")
    p.add_argument("--json", action="store_true", help="the figures as JSON")
    p.set_defaults(func=cmd_agreement)
