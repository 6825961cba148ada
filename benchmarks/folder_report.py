"""The small-folders study's report: means over seeds, paired differences with 95% intervals
(to the raw-pixel baseline, to random labels, sampled k-means to exact), AUBC over 10-160
labels, and the tables printed on stderr."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.table import Table

from folder_runs import BUDGETS, CLUSTERING_STRATEGIES, Arm
from salal_core.backbones.catalog import ROTNET
from salal_core.cli.commands.compare_stats import Estimate


def paired(rows: Sequence[dict[str, Any]], key: str, against: str) -> Estimate:
    return Estimate.of([r[key] - r[against] for r in rows])


def aubc(rows: Sequence[dict[str, Any]], key: str, budgets: Sequence[int]) -> list[float]:
    """Per seed, the mean accuracy over the doubling budgets (the area on a log axis)."""
    seeds = sorted({r["seed"] for r in rows})
    return [
        float(np.mean([r[key] for r in rows if r["seed"] == s and r["labels"] in budgets]))
        for s in seeds
    ]


def against(rows: Sequence[dict[str, Any]], strategy: str, other: str) -> dict[str, Any]:
    """The engine's accuracy with `strategy`'s labels minus with `other`'s, paired by seed: at
    each budget, and as AUBC over 10-160 labels."""
    mine = [r for r in rows if r["strategy"] == strategy]
    theirs = [r for r in rows if r["strategy"] == other]

    def gap(values: Sequence[float]) -> dict[str, float]:
        estimate = Estimate.of(values)
        return {"diff": estimate.mean, "low": estimate.low, "high": estimate.high}

    def at(labels: int, of: Sequence[dict[str, Any]]) -> list[float]:
        return [r["engine"] for r in sorted(of, key=lambda r: r["seed"]) if r["labels"] == labels]

    labels = sorted({r["labels"] for r in mine} & {r["labels"] for r in theirs})
    mine_aubc, theirs_aubc = aubc(mine, "engine", BUDGETS), aubc(theirs, "engine", BUDGETS)
    return {
        "aubc": gap([m - t for m, t in zip(mine_aubc, theirs_aubc, strict=True)]),
        "budgets": [
            {"labels": n, **gap([m - t for m, t in zip(at(n, mine), at(n, theirs), strict=True)])}
            for n in labels
        ],
    }


def summarize(name: str, result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]
    out: dict[str, Any] = {"folder": name, "cells": [], "aubc": []}
    labels = sorted({r["labels"] for r in rows})
    # The doubling budgets the runs reached: none when only the fractions were run, and then
    # there is no AUBC to report, nor a comparison built on it.
    budgets = [b for b in BUDGETS if b in labels]
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        for count in labels:
            cell = [r for r in mine if r["labels"] == count]
            diff = paired(cell, "engine", "raw_pixels")
            scratch = [r["scratch"] for r in cell if not math.isnan(r["scratch"])]
            out["cells"].append(
                {
                    "strategy": strategy,
                    "labels": count,
                    "engine": Estimate.of([r["engine"] for r in cell]).mean,
                    "raw_pixels": Estimate.of([r["raw_pixels"] for r in cell]).mean,
                    "propagation": Estimate.of([r["propagation"] for r in cell]).mean,
                    "scratch": Estimate.of(scratch).mean if scratch else None,
                    "diff": diff.mean,
                    "diff_low": diff.low,
                    "diff_high": diff.high,
                    "fine_tuned": float(np.mean([r["fine_tuned"] for r in cell])),
                    "round_seconds": float(np.nanmean([r["round_seconds"] for r in cell])),
                    "slowest_round_seconds": float(
                        np.nanmax([r["slowest_round_seconds"] for r in cell])
                    ),
                }
            )
        if not budgets:
            continue
        engine, raw = aubc(mine, "engine", budgets), aubc(mine, "raw_pixels", budgets)
        propagation = aubc(mine, "propagation", budgets)
        diff = Estimate.of([e - r for e, r in zip(engine, raw, strict=True)])
        over_engine = Estimate.of([p - e for p, e in zip(propagation, engine, strict=True)])
        out["aubc"].append(
            {
                "strategy": strategy,
                "engine": float(np.mean(engine)),
                "raw_pixels": float(np.mean(raw)),
                "propagation": float(np.mean(propagation)),
                "propagation_minus_engine": over_engine.mean,
                "propagation_minus_engine_low": over_engine.low,
                "propagation_minus_engine_high": over_engine.high,
                "diff": diff.mean,
                "diff_low": diff.low,
                "diff_high": diff.high,
            }
        )
    # Against random labels (on the same backbone), a pretrained backbone against rotnet (with
    # the same strategy), and sampled k-means against exact are AUBC comparisons.
    arms = {r["strategy"]: Arm(r["acquisition"], False, r["backbone"]) for r in rows}
    named = set(arms) if budgets else set()
    for strategy, arm in arms.items():
        if strategy not in named:
            continue
        random = Arm("random", False, arm.backbone).name
        if arm.acquisition != "random" and random in named:
            out.setdefault("minus_random", {})[strategy] = against(rows, strategy, random)
        rotnet = Arm(arm.acquisition, False, ROTNET).name
        if arm.backbone != ROTNET and rotnet in named:
            out.setdefault("minus_rotnet", {})[strategy] = against(rows, strategy, rotnet)
    for arm in (Arm(s, True) for s in CLUSTERING_STRATEGIES):
        if {arm.name, arm.acquisition} <= named:
            out.setdefault("sampled_minus_exact", {})[arm.acquisition] = against(
                rows, arm.name, arm.acquisition
            )["aubc"]
    for timing in ("pretrain_seconds", "embedding"):
        if timing in result:
            out[timing] = result[timing]
    return out


def table(summary: dict[str, Any]) -> Table:
    out = Table(title=f"{summary['folder']}: engine accuracy; minus raw-pixel LR [95% CI]")
    columns = ("strategy", "labels", "engine", "raw pixels", "propagation", "scratch", "diff")
    for column in (*columns, "fine-tuned", "round s (mean, slowest)"):
        out.add_column(column, justify="right")
    for c in summary["cells"]:
        scratch = "—" if c["scratch"] is None else f"{c['scratch']:.3f}"
        out.add_row(
            c["strategy"],
            str(c["labels"]),
            f"{c['engine']:.3f}",
            f"{c['raw_pixels']:.3f}",
            f"{c['propagation']:.3f}",
            scratch,
            f"{c['diff']:+.3f} [{c['diff_low']:+.3f}, {c['diff_high']:+.3f}]",
            f"{c['fine_tuned']:.0%}",
            f"{c['round_seconds']:.1f}, {c['slowest_round_seconds']:.1f}",
        )
    for a in summary["aubc"]:
        out.add_row(
            a["strategy"],
            "AUBC",
            f"{a['engine']:.3f}",
            f"{a['raw_pixels']:.3f}",
            f"{a['propagation']:.3f}",
            "",
            f"{a['diff']:+.3f} [{a['diff_low']:+.3f}, {a['diff_high']:+.3f}]",
            "",
            "",
        )
    return out


def random_table(summary: dict[str, Any], key: str = "minus_random") -> Table:
    """Each strategy against random labels (`minus_random`), or each pretrained backbone
    against rotnet (`minus_rotnet`), paired by seed, at each budget and as AUBC."""
    what = "random labels" if key == "minus_random" else "rotnet"
    out = Table(title=f"{summary['folder']}: engine accuracy, minus {what} [95% CI]")
    versus = summary[key]
    labels = [b["labels"] for b in next(iter(versus.values()))["budgets"]]
    for column in ("strategy", *map(str, labels), "AUBC 10-160"):
        out.add_column(column, justify="right")
    for strategy, gap in versus.items():
        cells = [*gap["budgets"], gap["aubc"]]
        out.add_row(
            strategy, *(f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" for c in cells)
        )
    return out
