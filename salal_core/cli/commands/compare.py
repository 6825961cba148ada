"""`salal-core compare`: acquisition functions side by side, from one shared pretraining.

Each strategy and seed is a full run directory under --out, so every curve can be inspected
and resumed; running the same command again picks up where it stopped (finished runs are read
back, unfinished ones resumed). The table, CSVs and plot say which strategy beat random, by how
much, and how sure that is across seeds.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from salal_core import json_text
from salal_core.backbones.catalog import BACKBONE_CHOICES, ROTNET
from salal_core.cli.commands.compare_arms import ArmGrid, fine_tune_modes
from salal_core.cli.commands.compare_stats import (
    BASELINE,
    REFERENCE,
    Estimate,
    Row,
    Verdict,
    rows,
    verdicts,
)
from salal_core.cli.commands.output import render, write_text
from salal_core.cli.flags import add_named
from salal_core.cli.options import (
    Subparsers,
    add_data_options,
    add_model_options,
    config_from_args,
    parse_name_list,
)
from salal_core.cli.progress import RichProgress
from salal_core.config import RunConfig, with_overrides
from salal_core.errors import SalalError
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.summary import RunSummary
from salal_core.selection.acquire import ACQUISITIONS

CURVE_FIELDS = ["strategy", "fraction", "runs", "mean", "std", "diff", "diff_low", "diff_high"]
AUBC_FIELDS = ["strategy", "runs", "aubc", "aubc_std", "diff", "diff_low", "diff_high"]


def _diff_cells(diff: Estimate | None) -> dict[str, float | None]:
    if diff is None:
        return {"diff": None, "diff_low": None, "diff_high": None}
    return {"diff": diff.mean, "diff_low": diff.low, "diff_high": diff.high}


def curve_records(table: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "strategy": r.strategy,
            "fraction": r.fraction,
            "runs": r.accuracy.runs,
            "mean": r.accuracy.mean,
            "std": r.accuracy.std,
            **_diff_cells(r.diff),
        }
        for r in table
    ]


def aubc_records(found: list[Verdict]) -> list[dict[str, Any]]:
    return [
        {
            "strategy": v.strategy,
            "runs": v.aubc.runs,
            "aubc": v.aubc.mean,
            "aubc_std": v.aubc.std,
            **_diff_cells(v.diff),
        }
        for v in found
    ]


def _signed(diff: Estimate) -> str:
    interval = "" if math.isnan(diff.low) else f" [{diff.low:+.4f}, {diff.high:+.4f}]"
    colour = (
        "green" if diff.excludes_zero and diff.mean > 0 else "red" if diff.excludes_zero else ""
    )
    text = f"{diff.mean:+.4f}{interval}"
    return f"[{colour}]{text}[/]" if colour else text


def render_table(table: list[Row], found: list[Verdict], against: str = BASELINE) -> Table:
    """Accuracy (mean ± std over seeds) per labeled fraction, the best in bold; then each
    strategy's AUBC and its difference to random with a 95% interval (green: above random,
    red: below, plain: the interval holds zero)."""
    strategies = list(dict.fromkeys(r.strategy for r in table))
    fractions = sorted({r.fraction for r in table})
    cell = {(r.strategy, r.fraction): r for r in table}
    out = Table(title="test accuracy, mean ± std over seeds")
    out.add_column("labeled", justify="right")
    for s in strategies:
        out.add_column(s, justify="right")
    for f in fractions:
        best = max((cell[(s, f)].accuracy.mean for s in strategies if (s, f) in cell), default=0)
        values = []
        for s in strategies:
            r = cell.get((s, f))
            text = f"{r.accuracy.mean:.4f} ± {r.accuracy.std:.4f}" if r else "-"
            values.append(f"[bold green]{text}" if r and r.accuracy.mean == best else text)
        out.add_row(f"{f:.0%}", *values)
    by_name = {v.strategy: v for v in found}
    out.add_section()
    out.add_row(
        "AUBC",
        *[f"{by_name[s].aubc.mean:.4f}" if s in by_name else "-" for s in strategies],
    )
    out.add_row(
        f"vs {against}",
        *[
            _signed(v.diff) if (v := by_name.get(s)) is not None and v.diff is not None else "-"
            for s in strategies
        ],
    )
    return out


def plot(table: list[Row], path: Path, against: str = BASELINE) -> bool:
    """Learning curves and, below them, the paired difference to random with its interval, as
    a PNG, when matplotlib (the `plot` extra) is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True, height_ratios=(3, 2))
    for s in dict.fromkeys(r.strategy for r in table):
        pts = [r for r in table if r.strategy == s]
        x = [100 * r.fraction for r in pts]
        top.errorbar(
            x,
            [r.accuracy.mean for r in pts],
            yerr=[r.accuracy.std for r in pts],
            marker="o",
            capsize=3,
            label=s,
        )
        diffs = [(100 * r.fraction, r.diff) for r in pts if r.diff is not None]
        if diffs:
            bottom.errorbar(
                [x for x, _ in diffs],
                [d.mean for _, d in diffs],
                yerr=[0.0 if math.isnan(d.low) else d.mean - d.low for _, d in diffs],
                marker="o",
                capsize=3,
                label=s,
            )
    top.set_ylabel("test accuracy")
    top.grid(alpha=0.3)
    top.legend()
    bottom.axhline(0, color="grey", lw=1)
    bottom.set_ylabel(f"minus {against} (95% CI)")
    bottom.set_xlabel("labeled (% of training set)")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def run_or_resume(config: RunConfig, run_dir: Path, console: Console) -> RunSummary:
    """A finished run is read back; an unfinished one is resumed; otherwise a new one runs."""
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        summary = RunSummary.from_json(json.loads(summary_path.read_text()))
        if not summary.stopped_early:
            console.print(f"[dim]{run_dir.name}: done before, read back")
            return summary
    resume = (run_dir / "salal.db").exists()
    with RichProgress(console) as progress:
        session = open_session(None if resume else config, run_dir, resume=resume)
        return Engine.for_session(session, progress).run()


def cmd_compare(args: argparse.Namespace) -> int:
    from salal_core.cli.commands.pretrain import pretrain_into

    strategies = parse_name_list(args.strategies, list(ACQUISITIONS), "acquisition")
    if args.seeds < 1:
        raise SalalError("--seeds must be at least 1")
    base = config_from_args(args)
    backbones = (
        parse_name_list(args.backbones, list(BACKBONE_CHOICES), "backbone")
        if args.backbones
        else [base.model.backbone]
    )
    grid = ArmGrid(base, strategies, backbones, fine_tune_modes(args.fine_tune_modes, base))
    arms = grid.arms()
    out: Path = args.out
    console = Console(stderr=True)
    if base.model.pretrained is None and ROTNET in backbones:
        checkpoint = out / "pretrain" / "checkpoints" / "pretrain.pt"
        if not checkpoint.exists():
            console.print("[bold]pretraining once for every strategy")
            rotnet = grid.config(strategies[0], ROTNET, grid.modes[0])
            checkpoint = Path(pretrain_into(rotnet, out / "pretrain", quiet=False)["checkpoint"])
        arms = [arm.with_rotation(checkpoint) for arm in arms]

    plan = [(a.name, a.config) for a in arms]
    against = grid.against
    if args.reference:  # every label from the start: the ceiling the strategies approach
        everything = {"active.initial_fraction": 1.0, "active.budget": 1.0}
        plan.append((REFERENCE, with_overrides(arms[0].config, everything)))
    summaries: dict[str, list[RunSummary]] = {name: [] for name, _ in plan}
    for name, config in plan:
        for seed in range(base.seed, base.seed + args.seeds):
            console.print(f"[bold]{name}, seed {seed}")
            run_dir = out / f"{name.replace(', ', '-').replace(' ', '-')}-seed{seed}"
            summaries[name].append(
                run_or_resume(with_overrides(config, {"seed": seed}), run_dir, console)
            )
    table, found = rows(summaries, against), verdicts(summaries, against)
    curves, aubcs = curve_records(table), aubc_records(found)
    write_text(out / "compare.csv", render(curves, "csv", CURVE_FIELDS))
    write_text(out / "compare-aubc.csv", render(aubcs, "csv", AUBC_FIELDS))
    png = out / "compare.png"
    drew = plot(table, png, against)
    if args.json:
        print(json_text.dumps({"curves": curves, "aubc": aubcs}))
        Console(stderr=True).print(render_table(table, found, against))
    else:
        Console().print(render_table(table, found, against))
    console.print(
        f"-> {out / 'compare.csv'}, {out / 'compare-aubc.csv'}"
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
        default="typiclust,badge,cluster_margin,entropy,random",
        help="comma-separated acquisition functions",
    )
    g.add_argument("--seeds", type=int, default=3, help="runs per strategy (seeds from --seed)")
    g.add_argument(
        "--backbones",
        metavar="A,B,...",
        help="feature sources side by side, e.g. rotnet,efficientnet_lite0 (default: --backbone)",
    )
    g.add_argument(
        "--fine-tune-modes",
        metavar="A,B",
        help="--fine-tune settings side by side on each pretrained backbone, e.g. off,check",
    )
    add_named(
        g, ["--initial-fraction", "--budget", "--query-size", "--epochs-per-round", "--pretrained"]
    )
    g.add_argument(
        "--reference",
        action="store_true",
        help="also fine-tune the same pretrained start on every label, per seed: the ceiling",
    )
    g.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    g.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(func=cmd_compare)
