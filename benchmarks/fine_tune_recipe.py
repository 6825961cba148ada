"""Does fine-tuning the pretrained backbone beat its frozen features, on the same labels?

On a folder of the small-folders study (a number: that many training images cut from the pack
as it cuts them, tested on 2,000 of its test images; or any folder of class folders),
for each seed and label count: a class-balanced random draw of labels, the head on the frozen
backbone's features (as the probe learner fits it: L2 by cross-validation), and the head on the
features of a copy fine-tuned on the same labels by salal's recipe (learn/tune.py, through the
engine's own `Tuner`). Both are scored on the folder's test images; reported are the means over
seeds, the paired difference with its 95% interval, and the seconds a fine-tuning and the
embedding pass after it took. `--check` also runs the engine's cross-validated check on the
same labels and counts how often the rule would have taken the tuned network.

    python benchmarks/fine_tune_recipe.py --out runs/sf --folders 300,digits --counts 40,160
    python benchmarks/fine_tune_recipe.py --out runs/sf --device cuda --check     # on a GPU
    STAGES=tune bash benchmarks/device_run.sh PACK        # the same on the device machine

Prints a table on stderr and the figures as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from folder_cuts import cut_pack, write_digits
from salal_core.backbones.catalog import spec_of
from salal_core.backbones.embed import embed_batch, embed_images
from salal_core.backbones.weights import locate
from salal_core.cli.commands.compare_stats import Estimate
from salal_core.config import DataConfig
from salal_core.data import load_dataset
from salal_core.events import ignore
from salal_core.learn.input_choice import clearly_better
from salal_core.learn.inputs import HeadFeatures, embedding_features
from salal_core.learn.probe import cross_validate, fit_probe, probe_probs
from salal_core.learn.tuned_input import Tuner
from salal_core.runtime import resolve_device

PACK = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
TEST_IMAGES = 2_000  # a cut folder's test images, as the small-folders study cuts them


def balanced_draw(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` positions, as even over the classes as the count allows, seeded."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    chosen = [
        p[: count // len(classes) + (i < count % len(classes))] for i, p in enumerate(per_class)
    ]
    return np.sort(np.concatenate(chosen))


def head_accuracy(
    features: HeadFeatures, rows: np.ndarray, labels: np.ndarray, test: torch.Tensor
) -> float:
    """The probe learner's head on `rows`: L2 by cross-validation, scored on the test split."""
    y = torch.from_numpy(labels[rows])
    classes = int(labels.max()) + 1
    l2 = cross_validate(features.train[rows], y, classes).l2
    weight = fit_probe(features.train[rows], y, classes, torch.Generator(), 1, l2)
    return float((probe_probs(weight, features.test).mean(0).argmax(1) == test).float().mean())


def study(folder: Path, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    device = resolve_device(args.device)
    data = DataConfig(source=str(folder.resolve()), cache_dir=str((args.out / "cache").resolve()))
    images = load_dataset(replace(data, test_limit=args.test_limit), 0)
    spec = spec_of(args.backbone)
    weights = locate(spec, Path(args.backbone_weights) if args.backbone_weights else None)
    batch = embed_batch(device)
    embedded = embed_images(images, weights, device, args.out / "cache", ignore, batch)
    frozen = embedding_features(spec.name, embedded.train, embedded.test)
    labels = np.asarray(images.train.labels)
    test = torch.as_tensor(images.test.labels)
    tuner = Tuner.of(weights, images, device, "always", args.steps, batch, ignore)
    rows_out = []
    for count in [int(c) for c in args.counts.split(",")]:
        for seed in range(args.seeds):
            rows = balanced_draw(labels, count, seed)
            y = torch.from_numpy(labels[rows])
            classes = int(labels.max()) + 1
            l2 = cross_validate(frozen.train[rows], y, classes).l2
            generator = torch.Generator().manual_seed(seed)
            started = time.perf_counter()
            tuned = tuner.tune(rows, labels, frozen, l2, classes, generator, 0)
            seconds = time.perf_counter() - started
            row: dict[str, Any] = {
                "labels": count,
                "seed": seed,
                "frozen": head_accuracy(frozen, rows, labels, test),
                "tuned": head_accuracy(tuned.features, rows, labels, test),
                "tune_and_embed_seconds": seconds,
            }
            if args.check:
                started = time.perf_counter()
                frozen_score = cross_validate(frozen.train[rows], y, classes)
                tuned_score = tuner.held_out(rows, labels, frozen, l2, classes, generator, 0)
                row["check_takes_tuned"] = clearly_better(tuned_score, frozen_score)
                row["check_seconds"] = time.perf_counter() - started
            rows_out.append(row)
            console.print(
                f"[dim]{folder.name} {count} labels seed {seed}: frozen {row['frozen']:.3f}, "
                f"tuned {row['tuned']:.3f} ({seconds:.0f} s)"
            )
    return {"folder": folder.name, "device": str(device), "rows": rows_out}


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for count in sorted({r["labels"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["labels"] == count]
        gap = Estimate.of([r["tuned"] - r["frozen"] for r in rows])
        summary = {
            "folder": result["folder"],
            "labels": count,
            "frozen": float(np.mean([r["frozen"] for r in rows])),
            "tuned": float(np.mean([r["tuned"] for r in rows])),
            "tuned_minus_frozen": {"mean": gap.mean, "low": gap.low, "high": gap.high},
            "seconds": float(np.mean([r["tune_and_embed_seconds"] for r in rows])),
        }
        if "check_takes_tuned" in rows[0]:
            summary["check_takes_tuned"] = sum(r["check_takes_tuned"] for r in rows)
            summary["check_seconds"] = float(np.mean([r["check_seconds"] for r in rows]))
        out.append(summary)
    return out


def study_folder(name: str, pack: Path, out: Path) -> Path:
    """A folder of class folders, the digits, or that many training images cut from the pack
    (each written once, where the small-folders study writes them)."""
    if Path(name).is_dir():
        return Path(name)
    if name == "digits":
        return write_digits(out / "folders" / "digits")
    return cut_pack(pack, out / "folders" / name, int(name) // 10, TEST_IMAGES)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", type=Path, default=PACK, help="the image-folder archive to cut")
    p.add_argument("--out", type=Path, required=True, help="the small-folders study's --out")
    p.add_argument(
        "--folders", default="300", help="sizes cut from the pack, digits, or folders of classes"
    )
    p.add_argument("--counts", default="40,160", help="label counts, comma-separated")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--test-limit", type=int, default=500, help="test images scored (0: all)")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--backbone-weights")
    p.add_argument("--steps", type=int, default=0, help="fine-tuning steps (0: salal's rule)")
    p.add_argument("--device", default="auto")
    p.add_argument("--check", action="store_true", help="also run the cross-validated check")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    table = Table("folder", "labels", "frozen", "tuned", "tuned − frozen [95%]", "s", "check")
    report = []
    for name in args.folders.split(","):
        folder = study_folder(name, args.pack, args.out)
        for s in summarize(study(folder, args, console)):
            gap = s["tuned_minus_frozen"]
            table.add_row(
                s["folder"],
                str(s["labels"]),
                f"{s['frozen']:.3f}",
                f"{s['tuned']:.3f}",
                f"{gap['mean']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}]",
                f"{s['seconds']:.0f}",
                str(s.get("check_takes_tuned", "")),
            )
            report.append(s)
    console.print(table)
    json.dump(report, sys.stdout)
    print()
    return report


if __name__ == "__main__":
    main()
