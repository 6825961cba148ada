"""The small-folders study: is the engine's model worth having from the first labels?

Folders of the sizes people bring (300, 1,000 and 5,000 class-balanced training images cut
from the shared CIFAR-10 pack, each tested on 2,000 of its test images; scikit-learn's
handwritten digits as a fourth), one rotation pretraining per folder shared by every seed,
then the engine itself (`Engine`, exactly what `salal-core run` and `salal-tui` drive) from
zero labels: queries of 10 up to 160 labels, random against the person's default strategy,
and a second run from 20% to 50% of the folder. On the very labels each run chose, two
baselines: logistic regression on the raw pixels (in torch, L2 by cross-validation, as the
engine's head) and the same network trained from scratch. Reported: means over seeds, the
paired difference to the raw-pixel baseline with its 95% interval, AUBC over 10-160 labels
(the mean over the doubling budgets), the time per round (mean and slowest) with
salal-tui's epochs per round, and each strategy (`--strategies`) against random labels,
paired by seed, at each budget and as AUBC. One semi-supervised method is measured beside
them on the same labels: label propagation over a k-nearest-neighbour graph of the pretrained
backbone's embeddings, train and test images together (Iscen et al., 2019).
`--sampled-kmeans` runs the clustering strategies a second time with k-means on a sample of the
pool, the path large pools take, and reports its AUBC against the exact one's, paired by seed.

    python benchmarks/small_folders.py --pack ../shared/datasets/cifar10-jpeg.tar.gz --out runs/sf
    python benchmarks/small_folders.py --quick    # a smoke run of a minute (the tests call it)

Prints a table on stderr and the figures as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from cpu_backbone import folder_config
from folder_baselines import (
    Propagation,
    pixels,
    pretrained_embeddings,
    propagation_accuracy,
    raw_pixel_accuracy,
    scratch_accuracy,
)
from folder_cuts import Folder, cut_pack, write_digits
from folder_report import random_table, summarize, table
from folder_runs import BUDGETS, arms, engine_run, kmeans_path, labeled_rounds
from salal_core.backbones.catalog import BACKBONE_CHOICES, ROTNET, spec_of
from salal_core.backbones.embed import Embeddings, embed_images
from salal_core.backbones.weights import locate
from salal_core.cli.commands.pretrain import pretrain_into
from salal_core.config import (
    HUMAN_ACTIVE,
    HUMAN_EPOCHS_PER_ROUND,
    RunConfig,
    preset,
    with_overrides,
)
from salal_core.data import DeviceData, ImageSet, load_dataset
from salal_core.data.load import cache_folder
from salal_core.events import ignore

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
FRACTIONS = (0.2, 0.5)
CPU_PRESET = "cpu"
DEFAULT_STRATEGY = str(HUMAN_ACTIVE["acquisition"])


def study_folder(folder: Folder, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Every run and baseline of one folder."""
    work = args.out / folder.name
    runs = args.runs / folder.name if args.runs else work
    base = folder_config(
        folder.path,
        args.out / "cache",
        args.width,
        {
            "active.finetune_from": args.finetune_from,
            "active.cross_validate_from": args.cross_validate_from,
            "active.cross_validate_below": args.cross_validate_below,
            # The round a person waits for: salal-tui's epochs per round (the same steps as
            # `salal-core run`'s, measured fewer times), so the round time is the one they see.
            "active.epochs_per_round": HUMAN_EPOCHS_PER_ROUND[CPU_PRESET],
            **({"pretrain.epochs": 1, "pretrain.optim.min_steps": 8} if args.quick else {}),
        },
    )
    backbones = args.backbones.split(",")
    started = time.perf_counter()
    images = load_dataset(base.data, 0)
    data = DeviceData(images, torch.device("cpu"))
    configs, graphs, results = {}, {}, {"train": data.num_train, "test": data.num_test}
    for backbone in backbones:  # each backbone's features, and a graph over them
        if backbone == ROTNET:
            checkpoint = work / "pretrain" / "checkpoints" / "pretrain.pt"
            if not checkpoint.exists():
                pretrain_into(base, work / "pretrain", quiet=True)
            results["pretrain_seconds"] = time.perf_counter() - started
            configs[backbone] = with_overrides(
                base, {"model.pretrained": str(checkpoint.resolve())}
            )
            graphs[backbone] = Propagation(pretrained_embeddings(configs[backbone], data))
        else:
            configs[backbone] = with_overrides(
                base, {"model.backbone": backbone, "model.backbone_weights": args.backbone_weights}
            )
            embedded = backbone_embeddings(configs[backbone], images)
            results.setdefault("embedding", {})[backbone] = {
                "images": len(images.train) + len(images.test),
                "seconds": embedded.seconds,
                "from_cache": embedded.from_cache,
            }
            graphs[backbone] = Propagation(torch.cat([embedded.train, embedded.test]))
    x, test = pixels(data)
    y, test_y = data.train_labels, data.test_labels
    position = {d: i for i, d in enumerate(images.train.digests)}
    n = data.num_train
    budgets = [b for b in (BUDGETS[:2] if args.quick else BUDGETS) if b < n]
    results["rows"] = []
    for arm in arms(args.strategies.split(","), args.sampled_kmeans, backbones):
        strategy, graph = arm.name, graphs[arm.backbone]
        for seed in range(args.seeds):
            for plan in ("budgets", "fractions"):
                if plan not in args.plans.split(",") or (plan == "fractions" and args.quick):
                    continue
                run = runs / f"{arm.slug}-{plan}-seed{seed}"
                if plan == "budgets":
                    overrides = {
                        "active.initial_fraction": 0.0,
                        "active.query_size": 10,
                        "active.budget": max(budgets) / n,
                    }
                else:
                    overrides = {
                        "active.initial_fraction": FRACTIONS[0],
                        "active.query_size": FRACTIONS[1] - FRACTIONS[0],
                        "active.budget": FRACTIONS[1],
                    }
                config = with_overrides(
                    configs[arm.backbone],
                    {"seed": seed, "active.acquisition": arm.acquisition, **overrides},
                )
                with kmeans_path(arm):
                    done = engine_run(config, run)
                rounds = done.round_seconds
                chosen = labeled_rounds(run)
                for r, (labels, accuracy) in enumerate(done.curve):
                    wanted = budgets if plan == "budgets" else [round(f * n) for f in FRACTIONS]
                    if labels not in wanted:
                        continue
                    picked = torch.tensor(
                        sorted(position[d] for d, rd in chosen.items() if rd <= r)
                    )
                    row = {
                        "strategy": strategy,
                        "acquisition": arm.acquisition,
                        "backbone": arm.backbone,
                        "seed": seed,
                        "labels": labels,
                        "engine": accuracy,
                        "raw_pixels": raw_pixel_accuracy(
                            x[picked], y[picked], test, test_y, data.num_classes
                        ),
                        "propagation": propagation_accuracy(graph, picked, data),
                        "scratch": scratch_accuracy(base, data, picked, seed)
                        if arm.acquisition == DEFAULT_STRATEGY and not args.no_scratch
                        else math.nan,
                        "fine_tuned": r in done.fine_tuned,
                        "round_seconds": float(np.mean(rounds)) if rounds else math.nan,
                        "slowest_round_seconds": max(rounds, default=math.nan),
                    }
                    results["rows"].append(row)
                console.print(
                    f"[dim]{folder.name} {strategy} {plan} seed {seed}: "
                    f"{time.perf_counter() - started:.0f} s"
                )
    return results


def backbone_embeddings(config: RunConfig, images: ImageSet) -> Embeddings:
    """The pretrained backbone's features of the folder, into the cache the engine's runs read
    (the first call of a folder times the embedding pass)."""
    spec = spec_of(config.model.backbone)
    given = config.model.backbone_weights
    weights = locate(spec, Path(given) if given else None)
    cache = cache_folder(config.data)
    return embed_images(images, weights, torch.device("cpu"), cache, ignore)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", type=Path, default=PACK)
    p.add_argument("--out", type=Path, default=Path("runs/small-folders"))
    p.add_argument("--folders", default="300,1000,5000,digits")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--width", type=int, default=preset("cpu").model.width)
    p.add_argument(
        "--strategies",
        default=f"random,{DEFAULT_STRATEGY}",
        help="the strategies run, comma-separated (default: random and the person's default)",
    )
    p.add_argument(
        "--sampled-kmeans",
        action="store_true",
        help="also run typiclust and cluster_margin with k-means on a sample of the pool",
    )
    p.add_argument("--no-scratch", action="store_true", help="skip the from-scratch baseline")
    p.add_argument(
        "--backbones",
        default=ROTNET,
        help=f"where features come from, comma-separated: {', '.join(BACKBONE_CHOICES[1:])}",
    )
    p.add_argument(
        "--backbone-weights",
        help="a pretrained backbone's weights file (default: at hand, e.g. the Lite0 package)",
    )
    p.add_argument(
        "--finetune-from",
        type=int,
        default=preset("cpu").active.finetune_from,
        help="the engine's switch from the frozen-feature head to fine-tuning (labels)",
    )
    p.add_argument(
        "--cross-validate-from",
        type=int,
        default=preset("cpu").active.cross_validate_from,
        help="below --finetune-from, cross-validate the switch from this many labels (0: never)",
    )
    p.add_argument(
        "--cross-validate-below",
        type=int,
        default=preset("cpu").active.cross_validate_below,
        help="cross-validate the switch only on folders under this many images (0: any size)",
    )
    p.add_argument("--plans", default="budgets,fractions", help="budgets, fractions or both")
    p.add_argument("--runs", type=Path, help="where the runs go (default: under --out)")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    args = p.parse_args(argv)
    if args.quick:
        args.folders, args.seeds, args.width, args.no_scratch = "300", 2, 4, True
        # The switch's cross-validation (tested in tests/functional/test_switch.py) would fit
        # each round's head once a fold and triple the smoke run: its rounds fit the head once.
        args.cross_validate_from = 0
    console = Console(stderr=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report: dict[str, Any] = {"folders": [], "seeds": args.seeds, "width": args.width}
    started = time.perf_counter()
    for name in args.folders.split(","):
        if name == "digits":
            path = write_digits(args.out / "folders" / "digits")
        else:
            per_class = int(name) // 10
            test_total = 400 if args.quick else 2000
            path = cut_pack(args.pack, args.out / "folders" / name, per_class, test_total)
        result = study_folder(Folder(name, path), args, console)
        summary = summarize(name, result)
        console.print(table(summary))
        for versus in ("minus_random", "minus_rotnet"):
            if summary.get(versus):
                console.print(random_table(summary, versus))
        for acquisition, gap in summary.get("sampled_minus_exact", {}).items():
            interval = f"[{gap['low']:+.3f}, {gap['high']:+.3f}]"
            console.print(
                f"AUBC 10-160, {acquisition}: sampled k-means minus exact: "
                f"{gap['diff']:+.3f} {interval}"
            )
        report["folders"].append(summary)
    report["seconds"] = time.perf_counter() - started
    json.dump(report, sys.stdout)
    print()
    return report


if __name__ == "__main__":
    main()
