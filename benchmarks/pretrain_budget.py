"""What buys frozen features in a fixed CPU time: a narrow network for many epochs or a wide
one for few.

Each candidate `WIDTHxEPOCHS` pretrains the `cpu` recipe's rotation backbone on one folder
(`salal-core pretrain`'s own path), then a linear probe (`probe.py`, L2 by 5-fold
cross-validation) reads the head's input, every stage pooled, at 10 / 20 / 40 / 80 / 160
random labels, the same labels for every candidate. Reported: pretraining seconds, held-out
rotation accuracy, test accuracy, AUBC, and its paired difference to raw-pixel logistic
regression and to the first candidate, with 95% intervals. Choose epochs so that the
candidates take about the same time (the `images/s` column says how).

    python benchmarks/small_folders.py --folders 5000 --out runs/sf      # leaves the folder
    python benchmarks/pretrain_budget.py --folder runs/sf/folders/5000 \\
        --candidates 16x8,8x26,32x2 --out runs/budget

A candidate whose checkpoint is already under `--out` is not pretrained again.
Prints a table on stderr and the figures as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from cpu_backbone import folder_config, pretrained_net
from probe_features import BUDGETS, probe_accuracy, random_picks, standardized
from salal_core.cli.commands.compare_stats import Estimate
from salal_core.cli.commands.pretrain import pretrain_into
from salal_core.data import DeviceData, load_dataset
from salal_core.learn.frozen import stage_features
from salal_core.learn.train import prepare


@dataclass(frozen=True)
class Candidate:
    width: int
    epochs: int

    @classmethod
    def parse(cls, text: str) -> Candidate:
        width, _, epochs = text.partition("x")
        if not (width.isdigit() and epochs.isdigit()):
            raise SystemExit(f"--candidates: {text!r} is not WIDTHxEPOCHS, e.g. 16x8")
        return cls(int(width), int(epochs))

    @property
    def name(self) -> str:
        return f"width {self.width}, {self.epochs} epoch{'s' if self.epochs != 1 else ''}"


def backbone(candidate: Candidate, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The candidate's pretrain.pt and its summary, pretraining it unless it is already there."""
    out = args.out / f"w{candidate.width}-e{candidate.epochs}"
    checkpoint = out / "checkpoints" / "pretrain.pt"
    if not checkpoint.exists():
        # No step floor: the recipe's 300-step minimum would give a wide network's few
        # epochs several times the time the candidates are meant to share.
        overrides = {"pretrain.epochs": candidate.epochs, "pretrain.optim.min_steps": 0}
        config = folder_config(args.folder, args.cache, candidate.width, overrides)
        pretrain_into(config, out, quiet=True)
    return checkpoint, json.loads((out / "summary.json").read_text())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--folder", type=Path, required=True, help="an image folder with train/test")
    p.add_argument(
        "--candidates",
        type=lambda s: [Candidate.parse(c) for c in s.split(",")],
        default=[Candidate(16, 8), Candidate(8, 26), Candidate(32, 2)],
        help="WIDTHxEPOCHS,... (the first is the reference)",
    )
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("runs/budget"))
    p.add_argument("--cache", type=Path, default=Path("runs/cache"))
    args = p.parse_args(argv)
    console = Console(stderr=True)
    started = time.perf_counter()
    base = folder_config(args.folder, args.cache, args.candidates[0].width)
    data = DeviceData(load_dataset(base.data, 0), torch.device("cpu"))
    y, test_y, classes = data.train_labels, data.test_labels, data.num_classes
    budgets = [b for b in BUDGETS if b < data.num_train]
    orders = [random_picks(data.num_train, max(budgets), seed) for seed in range(args.seeds)]

    def aubc_runs(x: torch.Tensor, test: torch.Tensor) -> list[list[float]]:
        """[seed][budget] test accuracy of the probe on `x`'s rows of each seed's labels."""
        return [
            [probe_accuracy(x[o[:n]], y[o[:n]], test, test_y, classes) for n in budgets]
            for o in orders
        ]

    pixels = aubc_runs(
        *standardized(
            *(prepare(i, data).flatten(1).float() for i in (data.train_images, data.test_images))
        )
    )
    rows: list[dict[str, Any]] = []
    for candidate in args.candidates:
        checkpoint, summary = backbone(candidate, args)
        config = folder_config(args.folder, args.cache, candidate.width)
        model = pretrained_net(config, data, checkpoint, head_input="all-stages")
        x, test = standardized(
            *(
                stage_features(model, i, data, 256).head
                for i in (data.train_images, data.test_images)
            )
        )
        rows.append(
            {
                "candidate": candidate.name,
                "dims": x.shape[1],
                "pretrain_seconds": summary["seconds"],
                "images_per_second": summary["images_per_second"],
                "rotation_accuracy": summary["rotation_accuracy"],
                "runs": aubc_runs(x, test),
            }
        )
        aubc = float(np.mean(rows[-1]["runs"]))
        console.print(
            f"[dim]{candidate.name}: AUBC {aubc:.3f}, {time.perf_counter() - started:.0f} s"
        )

    def gap(runs: list[list[float]], against: list[list[float]]) -> Estimate:
        return Estimate.of(
            [float(np.mean(a) - np.mean(b)) for a, b in zip(runs, against, strict=True)]
        )

    table = Table(title=f"{args.folder.name}: every-stage features by pretraining budget")
    columns = ("backbone", "pretrain", "images/s", "rotation", *map(str, budgets), "AUBC")
    for column in (*columns, "minus raw pixels [95%]", "minus the first [95%]"):
        table.add_column(column, justify="right")
    table.add_row(
        "raw pixels",
        "",
        "",
        "",
        *(f"{m:.3f}" for m in np.mean(pixels, 0)),
        f"{np.mean(pixels):.3f}",
    )
    for row in rows:
        row["accuracy"] = np.mean(row["runs"], 0).tolist()
        row["aubc"] = float(np.mean(row["runs"]))
        versus_pixels, versus_first = gap(row["runs"], pixels), gap(row["runs"], rows[0]["runs"])
        row["minus_pixels"], row["minus_first"] = asdict(versus_pixels), asdict(versus_first)
        table.add_row(
            row["candidate"],
            f"{row['pretrain_seconds']:.0f} s",
            f"{row['images_per_second']:.0f}",
            f"{row['rotation_accuracy']:.3f}",
            *(f"{m:.3f}" for m in row["accuracy"]),
            f"{row['aubc']:.3f}",
            f"{versus_pixels.mean:+.3f} [{versus_pixels.low:+.3f}, {versus_pixels.high:+.3f}]",
            f"{versus_first.mean:+.3f} [{versus_first.low:+.3f}, {versus_first.high:+.3f}]",
        )
    console.print(table)
    report = {
        "folder": str(args.folder),
        "budgets": budgets,
        "seeds": args.seeds,
        "raw_pixels": np.mean(pixels, 0).tolist(),
        "backbones": rows,
        "seconds": time.perf_counter() - started,
    }
    json.dump(report, sys.stdout)
    print()
    return report


if __name__ == "__main__":
    main()
