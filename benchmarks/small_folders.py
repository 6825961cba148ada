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
import contextlib
import json
import math
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from cpu_backbone import folder_config, pretrained_net
from salal_core.cli.commands.compare_stats import Estimate
from salal_core.cli.commands.pretrain import pretrain_into
from salal_core.config import (
    HUMAN_ACTIVE,
    HUMAN_EPOCHS_PER_ROUND,
    RunConfig,
    preset,
    with_overrides,
)
from salal_core.data import DeviceData, load_dataset
from salal_core.events import EpochEnded, Event, LabelsAdded, QueryReady
from salal_core.learn.frozen import stage_features
from salal_core.learn.inference import evaluate
from salal_core.learn.model import Net, distance_embedding
from salal_core.learn.probe import fit_probe, probe_probs, standardize
from salal_core.learn.train import fit, prepare
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.store import RunStore
from salal_core.selection import clustering

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
BUDGETS = (10, 20, 40, 80, 160)
FRACTIONS = (0.2, 0.5)
CPU_PRESET = "cpu"
DEFAULT_STRATEGY = str(HUMAN_ACTIVE["acquisition"])
SCRATCH_EPOCHS, SCRATCH_STEPS = 5, 100  # the cpu recipe's round, from random weights


@dataclass(frozen=True)
class Folder:
    name: str
    path: Path


@dataclass(frozen=True)
class Arm:
    """One way of choosing labels: a strategy, and whether its k-means runs on a sample of the
    pool whatever the pool's size (`--sampled-kmeans`: the large-pool path, measured against
    the exact one on the same seeds)."""

    acquisition: str
    sampled_kmeans: bool = False

    @property
    def name(self) -> str:
        return f"{self.acquisition}, sampled k-means" if self.sampled_kmeans else self.acquisition

    @property
    def slug(self) -> str:
        return f"{self.acquisition}-sampled" if self.sampled_kmeans else self.acquisition


CLUSTERING_STRATEGIES = ("typiclust", "cluster_margin")  # those that run k-means


def arms(strategies: Sequence[str], sampled_kmeans: bool) -> list[Arm]:
    out = [Arm(s) for s in strategies]
    if sampled_kmeans:
        out += [Arm(s, True) for s in strategies if s in CLUSTERING_STRATEGIES]
    return out


@contextlib.contextmanager
def kmeans_path(arm: Arm) -> Iterator[None]:
    """Every k-means of the arm on the sampled path (the pool still has to be more than
    SAMPLE_PER_CLUSTER points a cluster), or as the engine decides."""
    exact_work = clustering.EXACT_WORK
    clustering.EXACT_WORK = 0.0 if arm.sampled_kmeans else exact_work
    try:
        yield
    finally:
        clustering.EXACT_WORK = exact_work


# ------------------------------------------------------------------------------ the folders


def cut_pack(pack: Path, out: Path, per_class: int, test_total: int, seed: int = 0) -> Path:
    """A class-balanced image folder of `per_class` training images a class and `test_total`
    test images, drawn with a seed (the pack is ordered by class), written once."""
    if (out / "train").exists():
        return out
    members: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
    with tarfile.open(pack) as tar:
        infos = [i for i in tar if i.isfile() and len(Path(i.name).parts) >= 3]
        for info in infos:
            split, cls = Path(info.name).parts[-3:-1]
            members.setdefault((split, cls), []).append(info)
        rng = np.random.default_rng(seed)
        classes = sorted({cls for _, cls in members})
        wanted = {"train": per_class, "test": test_total // len(classes)}
        chosen = [
            (split, cls, found[i])
            for (split, cls), found in sorted(members.items())
            if split in wanted
            for i in rng.permutation(len(found))[: wanted[split]]
        ]
        # In the archive's order: a gzip stream seeks back only by decompressing from the start.
        for split, cls, info in sorted(chosen, key=lambda c: c[2].offset):
            data = tar.extractfile(info)
            assert data is not None
            target = out / split / cls / Path(info.name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.read())
    return out


def write_digits(out: Path, test_total: int = 497) -> Path:
    """scikit-learn's handwritten digits (1,797 8x8 images) as an image folder with a seeded
    held-out split; needs the `study` extra (scikit-learn) once, to write the folder."""
    if (out / "train").exists():
        return out
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit("the digits need scikit-learn: pip install -e '.[study]'") from None
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    for rank, i in enumerate(order):
        split = "test" if rank < test_total else "train"
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        target = out / split / str(digits.target[i]) / f"{i:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target)
    return out


# ------------------------------------------------------------------------------ the runs


class Timeline:
    """Events with the time they came: a round runs from the moment its labels are in until
    its next query is ready (training, measuring, scoring, selecting)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []

    def __call__(self, event: Event) -> None:
        self.events.append((time.perf_counter(), event))

    def round_seconds(self) -> list[float]:
        out, began = [], None
        for when, event in self.events:
            if isinstance(event, LabelsAdded):  # the answers are in: the round begins
                began = when if began is None else began
            elif isinstance(event, QueryReady) and began is not None:
                out.append(when - began)
                began = None
        return out

    def fine_tuned_rounds(self) -> set[int]:
        """The rounds that fine-tuned the network: the head on frozen features reports its fit
        as one epoch, a fine-tuning round its `epochs_per_round` (more than one in the study)."""
        return {
            e.round
            for _, e in self.events
            if isinstance(e, EpochEnded) and e.phase == "finetune" and e.epochs > 1
        }


@dataclass(frozen=True)
class EngineRun:
    curve: list[tuple[int, float]]  # (labels, test accuracy) per round
    round_seconds: list[float]
    fine_tuned: set[int]  # the rounds that fine-tuned the network


def engine_run(config: RunConfig, out: Path) -> EngineRun:
    """One run of the engine, with what the study reads of it."""
    if config.active.epochs_per_round < 2:
        raise SystemExit("the study tells fine-tuning rounds by their epochs: use 2 or more")
    timeline = Timeline()
    summary = Engine.for_session(open_session(config, out), timeline).run()
    if summary.stop_reason not in ("budget", "pool empty"):
        raise SystemExit(f"{out}: the run ended with {summary.stop_reason}: {summary.stop_detail}")
    curve = [(p.labeled, p.test_accuracy) for p in summary.curve]
    return EngineRun(curve, timeline.round_seconds(), timeline.fine_tuned_rounds())


def labeled_rounds(run: Path) -> dict[str, int]:
    """Each labeled image's digest -> the round it was labeled in."""
    store = RunStore(run, create=False, lock=False)
    try:
        digest = {s.item: s.digest for s in store.items()}
        return {digest[item]: record.round for item, record in store.labels().items()}
    finally:
        store.close()


def pixels(data: DeviceData) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized raw pixels of the train and test images: (N, 3 * H * W)."""
    train = prepare(data.train_images, data).flatten(1)
    test = prepare(data.test_images, data).flatten(1)
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return standardize(train, mean, std), standardize(test, mean, std)


def raw_pixel_accuracy(
    x: torch.Tensor, y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, classes: int
) -> float:
    w = fit_probe(x, y, classes, torch.Generator().manual_seed(0))
    return float((probe_probs(w, test).mean(0).argmax(1) == test_y).float().mean())


class Propagation:
    """Label propagation (Zhou et al., 2004, as Iscen et al., 2019 use it): the labels diffuse
    over a k-NN graph of every image's embedding, train and test together, and each image takes
    the class with the most mass. The graph is built once; each set of labels is one solve."""

    def __init__(self, embeddings: torch.Tensor, k: int = 50, gamma: float = 3.0) -> None:
        x = torch.nn.functional.normalize(embeddings.float(), dim=1)
        similarity = x @ x.T
        similarity.fill_diagonal_(-1.0)
        values, columns = similarity.topk(min(k, len(x) - 1), dim=1)
        del similarity
        weights = torch.zeros(len(x), len(x)).scatter_(1, columns, values.clamp_min(0) ** gamma)
        weights = weights + weights.T  # symmetric: a neighbour's neighbour is one too
        scale = weights.sum(1).clamp_min(1e-12).rsqrt()
        self.normalized = scale[:, None] * weights * scale[None, :]

    def scores(
        self, rows: torch.Tensor, labels: torch.Tensor, classes: int, alpha: float = 0.99
    ) -> torch.Tensor:
        """(N, C) class mass: (I - alpha W) Z = Y by conjugate gradients, every class at once;
        Y weights each class by one over its label count, so a frequent class does not
        flood the graph."""
        y = torch.zeros(len(self.normalized), classes)
        y[rows, labels] = 1.0
        y /= y.sum(0).clamp_min(1.0)
        z, residual = torch.zeros_like(y), y.clone()
        direction, norm = residual.clone(), (residual * residual).sum(0)
        tolerance = 1e-12 * norm.max()
        for _ in range(50):  # each step reaches one hop further; image graphs are shallow
            step = direction - alpha * (self.normalized @ direction)
            rate = norm / (direction * step).sum(0).clamp_min(1e-20)
            z += rate * direction
            residual -= rate * step
            new_norm = (residual * residual).sum(0)
            if bool((new_norm <= tolerance).all()):
                break
            direction = residual + (new_norm / norm.clamp_min(1e-20)) * direction
            norm = new_norm
        return z


def pretrained_embeddings(config: RunConfig, data: DeviceData) -> torch.Tensor:
    """The pretrained backbone's distance embeddings (those selection uses), train rows then
    test rows, with BatchNorm statistics recomputed over the upright pool as the engine does."""
    model = pretrained_net(config, data, Path(config.model.pretrained))
    parts = [
        stage_features(model, images, data, config.eval_batch_size)
        for images in (data.train_images, data.test_images)
    ]
    return torch.cat([distance_embedding(part.third, part.last) for part in parts])


def propagation_accuracy(graph: Propagation, positions: torch.Tensor, data: DeviceData) -> float:
    scores = graph.scores(positions, data.train_labels[positions], data.num_classes)
    predicted = scores[data.num_train :].argmax(1)
    return float((predicted == data.test_labels).float().mean())


def scratch_accuracy(
    config: RunConfig, data: DeviceData, positions: torch.Tensor, seed: int
) -> float:
    """The same network from random weights, trained on these labels alone with the cpu
    recipe's round (its minimum steps included)."""
    torch.manual_seed(seed)
    model = Net(config.model.width, data.num_classes, head_input=config.model.head_input)
    optim = config.active.optim
    fit(
        model,
        data,
        positions,
        data.train_labels,
        optim,
        SCRATCH_EPOCHS,
        phase="finetune",
        round_=0,
        evaluate_fn=lambda: (math.nan, math.nan),
        emit=lambda event: None,
        generator=torch.Generator().manual_seed(seed),
    )
    return evaluate(model, data.test_images, data.test_labels, data, 512)[1]


# ------------------------------------------------------------------------------ the study


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
    checkpoint = work / "pretrain" / "checkpoints" / "pretrain.pt"
    started = time.perf_counter()
    if not checkpoint.exists():
        pretrain_into(base, work / "pretrain", quiet=True)
    pretrain_seconds = time.perf_counter() - started
    base = with_overrides(base, {"model.pretrained": str(checkpoint.resolve())})
    images = load_dataset(base.data, 0)
    data = DeviceData(images, torch.device("cpu"))
    x, test = pixels(data)
    graph = Propagation(pretrained_embeddings(base, data))
    y, test_y = data.train_labels, data.test_labels
    position = {d: i for i, d in enumerate(images.train.digests)}
    n = data.num_train
    budgets = [b for b in (BUDGETS[:3] if args.quick else BUDGETS) if b < n]
    results: dict[str, Any] = {"train": n, "test": data.num_test, "rows": []}
    for arm in arms(args.strategies.split(","), args.sampled_kmeans):
        strategy = arm.name
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
                    base, {"seed": seed, "active.acquisition": arm.acquisition, **overrides}
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
                        "seed": seed,
                        "labels": labels,
                        "engine": accuracy,
                        "raw_pixels": raw_pixel_accuracy(
                            x[picked], y[picked], test, test_y, data.num_classes
                        ),
                        "propagation": propagation_accuracy(graph, picked, data),
                        "scratch": scratch_accuracy(base, data, picked, seed)
                        if strategy == DEFAULT_STRATEGY and not args.no_scratch
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
    results["pretrain_seconds"] = pretrain_seconds
    return results


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
    out: dict[str, Any] = {"folder": name, "cells": []}
    labels = sorted({r["labels"] for r in rows})
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
        budgets = [b for b in BUDGETS if b in labels]
        engine, raw = aubc(mine, "engine", budgets), aubc(mine, "raw_pixels", budgets)
        propagation = aubc(mine, "propagation", budgets)
        diff = Estimate.of([e - r for e, r in zip(engine, raw, strict=True)])
        over_engine = Estimate.of([p - e for p, e in zip(propagation, engine, strict=True)])
        out.setdefault("aubc", []).append(
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
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    if "random" in strategies:
        out["minus_random"] = {s: against(rows, s, "random") for s in strategies if s != "random"}
    for arm in (Arm(s, True) for s in CLUSTERING_STRATEGIES):
        if {arm.name, arm.acquisition} <= set(strategies):
            out.setdefault("sampled_minus_exact", {})[arm.acquisition] = against(
                rows, arm.name, arm.acquisition
            )["aubc"]
    out["pretrain_seconds"] = result["pretrain_seconds"]
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


def random_table(summary: dict[str, Any]) -> Table:
    """Each strategy against random labels, paired by seed, at each budget and as AUBC."""
    out = Table(title=f"{summary['folder']}: engine accuracy, minus random labels [95% CI]")
    versus = summary["minus_random"]
    labels = [b["labels"] for b in next(iter(versus.values()))["budgets"]]
    for column in ("strategy", *map(str, labels), "AUBC 10-160"):
        out.add_column(column, justify="right")
    for strategy, gap in versus.items():
        cells = [*gap["budgets"], gap["aubc"]]
        out.add_row(
            strategy, *(f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" for c in cells)
        )
    return out


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
        if summary.get("minus_random"):
            console.print(random_table(summary))
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
