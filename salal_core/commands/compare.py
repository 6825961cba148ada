"""`salal-core compare`: acquisition functions side by side, from one shared pretraining.

Each strategy and seed is a full run directory under --out, so every curve can be inspected
and resumed; the table, CSV and plot are built from their summaries.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..acquire import ACQUISITIONS
from ..config import validate, with_overrides
from ..engine import Engine
from ..errors import SalalError
from ..factory import open_session
from ..options import (
    Subparsers,
    add_data_options,
    add_model_options,
    config_from_args,
    parse_name_list,
)
from ..progress import RichProgress
from ..summary import RunSummary
from .output import render, write_text


def aggregate(summaries: dict[str, list[RunSummary]]) -> list[dict[str, Any]]:
    """Rows of (strategy, labeled fraction, mean and std of test accuracy over seeds)."""
    rows = []
    for strategy, runs in summaries.items():
        by_fraction: dict[float, list[float]] = {}
        for summary in runs:
            for point in summary.curve:
                by_fraction.setdefault(round(point.fraction, 4), []).append(point.test_accuracy)
        for fraction, accs in sorted(by_fraction.items()):
            rows.append(
                {
                    "strategy": strategy,
                    "fraction": fraction,
                    "runs": len(accs),
                    "mean": statistics.mean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                }
            )
    return rows


def render_table(rows: list[dict[str, Any]]) -> Table:
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    fractions = sorted({r["fraction"] for r in rows})
    cell = {(r["strategy"], r["fraction"]): r for r in rows}
    table = Table(title="test accuracy, mean ± std over seeds")
    table.add_column("labeled", justify="right")
    for s in strategies:
        table.add_column(s, justify="right")
    for f in fractions:
        best = max((cell[(s, f)]["mean"] for s in strategies if (s, f) in cell), default=0)
        values = []
        for s in strategies:
            r = cell.get((s, f))
            text = f"{r['mean']:.4f} ± {r['std']:.4f}" if r else "-"
            values.append(f"[bold green]{text}" if r and r["mean"] == best else text)
        table.add_row(f"{f:.0%}", *values)
    return table


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """Learning curves as a PNG, when matplotlib (the `plot` extra) is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in dict.fromkeys(r["strategy"] for r in rows):
        pts = [r for r in rows if r["strategy"] == s]
        x = [100 * r["fraction"] for r in pts]
        y = [r["mean"] for r in pts]
        e = [r["std"] for r in pts]
        ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=s)
    ax.set_xlabel("labeled (% of training set)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def cmd_compare(args: argparse.Namespace) -> int:
    from .pretrain import pretrain_into

    strategies = parse_name_list(args.strategies, list(ACQUISITIONS), "acquisition")
    if args.seeds < 1:
        raise SalalError("--seeds must be at least 1")
    base = config_from_args(args)
    overrides = {
        k: v
        for k, v in {
            "active.budget": args.budget,
            "active.query_size": args.query_size,
            "active.initial_fraction": args.initial_fraction,
            "active.epochs_per_round": args.epochs_per_round,
        }.items()
        if v is not None
    }
    base = with_overrides(base, overrides)
    for s in strategies:
        validate(with_overrides(base, {"active.acquisition": s}))
    out: Path = args.out
    console = Console(stderr=True)
    if base.model.pretrained is None:
        console.print("[bold]pretraining once for every strategy")
        checkpoint = pretrain_into(base, out / "pretrain", quiet=False)["checkpoint"]
        base = with_overrides(base, {"model.pretrained": str(Path(checkpoint).resolve())})
    summaries: dict[str, list[RunSummary]] = {s: [] for s in strategies}
    for strategy in strategies:
        for seed in range(base.seed, base.seed + args.seeds):
            config = with_overrides(base, {"active.acquisition": strategy, "seed": seed})
            console.print(f"[bold]{strategy}, seed {seed}")
            with RichProgress(console) as progress:
                session = open_session(config, out / f"{strategy}-seed{seed}")
                summaries[strategy].append(Engine.for_session(session, progress).run())
    rows = aggregate(summaries)
    Console().print(render_table(rows))
    write_text(
        out / "compare.csv", render(rows, "csv", ["strategy", "fraction", "runs", "mean", "std"])
    )
    png = out / "compare.png"
    drew = plot(rows, png)
    console.print(
        f"-> {out / 'compare.csv'}"
        + (f", {png}" if drew else " (pip install 'salal[plot]' for a PNG of the curves)")
    )
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("compare", help="acquisition functions side by side over seeds")
    add_data_options(p)
    add_model_options(p)
    g = p.add_argument_group("comparison")
    g.add_argument(
        "--strategies",
        default="entropy,margin,variation_ratio,qbc,random",
        help="comma-separated acquisition functions",
    )
    g.add_argument("--seeds", type=int, default=3, help="runs per strategy (seeds from --seed)")
    g.add_argument("--initial-fraction", type=float)
    g.add_argument("--budget", type=float)
    g.add_argument("--query-size", type=float)
    g.add_argument("--epochs-per-round", type=int)
    g.add_argument("--pretrained", type=Path, help="skip pretraining: use this pretrain.pt")
    g.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(func=cmd_compare)
