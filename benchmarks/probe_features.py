"""Which frozen features a linear probe should see at 10-160 labels: stages, pooling, pixels.

One rotation-pretrained backbone (a `pretrain.pt`, as `small_folders.py` leaves under its
folder's `pretrain/checkpoints`), BatchNorm statistics recomputed over the upright pool as the
engine does, then a linear probe (`probe.py`: softmax regression, L2 by 5-fold
cross-validation) on each candidate feature set, on the same random labels for every set:
10 / 20 / 40 / 80 / 160 labels, over seeds. Reported: test accuracy, AUBC (the mean over the
doubling budgets) and its paired difference to logistic regression on the raw pixels.

    python benchmarks/small_folders.py --folders 5000 --out runs/sf      # leaves the backbone
    python benchmarks/probe_features.py --folder runs/sf/folders/5000 \\
        --pretrained runs/sf/5000/pretrain/checkpoints/pretrain.pt

Prints a table on stderr and the figures as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch.nn import functional as F

from cpu_backbone import folder_config, pretrained_net
from salal_core.cli.commands.compare_stats import Estimate
from salal_core.config import preset
from salal_core.data import DeviceData, load_dataset
from salal_core.learn.inference import fixed_batches
from salal_core.learn.model import Net
from salal_core.learn.probe import fit_probe, probe_probs, standardize
from salal_core.learn.train import prepare

BUDGETS = (10, 20, 40, 80, 160)
STAGES = ("stem", "stage 1", "stage 2", "stage 3", "stage 4")


@torch.no_grad()
def stage_maps(model: Net, images: torch.Tensor, data: DeviceData) -> list[torch.Tensor]:
    """Every stage's feature map, each pooled to 2x2 (B, C, 2, 2), in eval mode."""
    model.eval()
    blocks = model.backbone.stages
    out: list[list[torch.Tensor]] = [[] for _ in STAGES]
    for chunk, real in fixed_batches(images, 256):
        x = model.backbone.stem(prepare(chunk, data))
        maps = [x]
        for start in range(0, len(blocks), 2):  # two blocks a stage
            x = blocks[start : start + 2](x)
            maps.append(x)
        for bucket, m in zip(out, maps, strict=True):
            bucket.append(F.adaptive_avg_pool2d(m[:real].float(), 2))
    return [torch.cat(bucket) for bucket in out]


def feature_sets(model: Net, data: DeviceData) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Candidate probe inputs, (train, test), each standardized by the train images' moments."""
    maps = [stage_maps(model, images, data) for images in (data.train_images, data.test_images)]

    def whole(i: int, grid: bool) -> tuple[torch.Tensor, torch.Tensor]:
        pick: Callable[[torch.Tensor], torch.Tensor] = (
            (lambda m: m.flatten(1)) if grid else (lambda m: m.mean((2, 3)))
        )
        return pick(maps[0][i]), pick(maps[1][i])

    def joined(*parts: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)

    train_pixels, test_pixels = (
        prepare(images, data).flatten(1).float() for images in (data.train_images, data.test_images)
    )
    raw: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
        "raw pixels": (train_pixels, test_pixels),
        "last stage (fast and paper's head)": whole(4, False),
        "stages 3+4 (the distance embedding)": joined(whole(3, False), whole(4, False)),
        "every stage, pooled (the cpu recipe's head)": joined(*(whole(i, False) for i in range(5))),
        "stages 2+3, 2x2 grid": joined(whole(2, True), whole(3, True)),
        "every stage, 2x2 grid": joined(*(whole(i, True) for i in range(5))),
    }
    raw["raw pixels + every stage, 2x2 grid"] = joined(
        raw["raw pixels"], raw["every stage, 2x2 grid"]
    )
    return {name: standardized(train, test) for name, (train, test) in raw.items()}


def standardized(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both scaled by the train rows' moments, as the engine scales the head's input."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return standardize(train, mean, std), standardize(test, mean, std)


def random_picks(pool: int, n: int, seed: int) -> torch.Tensor:
    """`n` positions in a seeded random order: each budget's labels are the first ones."""
    return torch.randperm(pool, generator=torch.Generator().manual_seed(seed))[:n]


def probe_accuracy(
    x: torch.Tensor, y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, classes: int
) -> float:
    w = fit_probe(x, y, classes, torch.Generator().manual_seed(0))
    return float((probe_probs(w, test).mean(0).argmax(1) == test_y).float().mean())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--folder", type=Path, required=True, help="an image folder with train/test")
    p.add_argument("--pretrained", type=Path, required=True, help="a rotation pretrain.pt")
    p.add_argument("--width", type=int, default=preset("cpu").model.width, help="the backbone's")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--cache", type=Path, default=Path("runs/cache"))
    args = p.parse_args(argv)
    console = Console(stderr=True)
    started = time.perf_counter()
    config = folder_config(args.folder, args.cache, args.width)
    data = DeviceData(load_dataset(config.data, 0), torch.device("cpu"))
    model = pretrained_net(config, data, args.pretrained)
    sets = feature_sets(model, data)
    y, test_y = data.train_labels, data.test_labels
    budgets = [b for b in BUDGETS if b < data.num_train]
    accuracy: dict[str, list[list[float]]] = {name: [] for name in sets}  # [seed][budget]
    for seed in range(args.seeds):
        order = random_picks(data.num_train, max(budgets), seed)
        for name, (x, test) in sets.items():
            accuracy[name].append(
                [
                    probe_accuracy(x[order[:n]], y[order[:n]], test, test_y, data.num_classes)
                    for n in budgets
                ]
            )
        console.print(f"[dim]seed {seed}: {time.perf_counter() - started:.0f} s")
    pixels_aubc = [float(np.mean(row)) for row in accuracy["raw pixels"]]
    report: dict[str, Any] = {"budgets": budgets, "seeds": args.seeds, "sets": []}
    table = Table(title=f"{args.folder.name}: linear probe accuracy on random labels")
    for column in ("features", "dims", *map(str, budgets), "AUBC", "minus raw pixels [95%]"):
        table.add_column(column, justify="right")
    for name, runs in accuracy.items():
        means = np.mean(runs, 0).tolist()
        aubc = [float(np.mean(row)) for row in runs]
        gap = Estimate.of([a - b for a, b in zip(aubc, pixels_aubc, strict=True)])
        report["sets"].append(
            {
                "features": name,
                "dims": sets[name][0].shape[1],
                "accuracy": means,
                "aubc": float(np.mean(aubc)),
                "minus_pixels": gap.mean,
                "minus_pixels_low": gap.low,
                "minus_pixels_high": gap.high,
            }
        )
        table.add_row(
            name,
            str(sets[name][0].shape[1]),
            *(f"{m:.3f}" for m in means),
            f"{np.mean(aubc):.3f}",
            f"{gap.mean:+.3f} [{gap.low:+.3f}, {gap.high:+.3f}]",
        )
    console.print(table)
    report["seconds"] = time.perf_counter() - started
    json.dump(report, sys.stdout)
    print()
    return report


if __name__ == "__main__":
    main()
