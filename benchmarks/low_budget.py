"""The low-budget study: which strategy to use when a person starts from zero labels.

One rotation pretraining with the cpu recipe on a slice of the data (or --pretrained), then,
for every strategy and seed, labels grow 0 -> 10 -> 20 -> 40 -> 80 -> 160: each step fits a
linear probe on the frozen backbone's embeddings (a committee of bootstrap probes for committee
strategies), asks the strategy for the next batch through the same `select` the engine calls,
and measures the probe on the test split. Every strategy but random starts from zero labels
with typiclust, as the engine does. Prints a table on stderr and the figures as JSON on stdout.

    python benchmarks/low_budget.py --data ../shared/datasets/cifar10-jpeg.tar.gz --out runs/study
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from salal_core.cli.commands.compare_stats import Estimate
from salal_core.cli.commands.pretrain import pretrain_into
from salal_core.config import preset, with_overrides
from salal_core.data import DeviceData, load_dataset
from salal_core.data.identity import item_priority
from salal_core.learn.inference import pool_pass
from salal_core.learn.pretrain import PretrainCheckpoint, build_model
from salal_core.learn.probe import fit_probe, probe_probs
from salal_core.runtime import configure, resolve_device
from salal_core.selection import acquire
from salal_core.selection.pool import Pool

DEFAULT_STRATEGIES = "typiclust,coreset,badge,cluster_margin,entropy,margin,bald,random"
PROBE_MEMBERS = 5  # bootstrap probes for committee strategies


def run_strategy(
    name: str,
    seed: int,
    train: torch.Tensor,
    labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    priority: torch.Tensor,
    budgets: list[int],
    classes: int,
) -> list[float]:
    """Test accuracy of the probe at each budget, for one strategy and seed."""
    generator = torch.Generator().manual_seed(seed)
    strategy = acquire.get(name)
    members = PROBE_MEMBERS if strategy.committee else 1
    labeled = torch.zeros(len(train), dtype=torch.bool)
    accuracies = []
    w: torch.Tensor | None = None
    for budget in budgets:
        pool = (~labeled).nonzero()[:, 0]
        k = budget - int(labeled.sum())
        if w is None:  # nothing labeled: no classifier, a cold start (random stays random)
            probs = torch.full((members, len(pool), classes), 1.0 / classes)
            chosen_by = strategy if name == "random" else acquire.get(acquire.COLD_START)
        else:
            probs = probe_probs(w, train[pool])
            chosen_by = strategy
        picked, _ = chosen_by.select(
            Pool(probs, train[pool], train[pool], train[labeled], priority[pool]), k, generator
        )
        labeled[pool[picked]] = True
        w = fit_probe(train[labeled], labels[labeled], classes, generator, members)
        predicted = probe_probs(w, test).mean(0).argmax(1)
        accuracies.append(float((predicted == test_labels).float().mean()))
    return accuracies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", type=Path, required=True, help="where the pretraining is kept")
    p.add_argument("--pretrained", type=Path, help="skip pretraining: use this pretrain.pt")
    p.add_argument("--train", type=int, default=5000, help="training slice (class-balanced)")
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--width", type=int, default=preset("cpu").model.width)
    p.add_argument("--pretrain-epochs", type=int, default=preset("cpu").pretrain.epochs)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budgets", default="10,20,40,80,160")
    p.add_argument("--strategies", default=DEFAULT_STRATEGIES)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir")
    p.add_argument(
        "--embedding",
        choices=["both", "third", "last"],
        default="both",
        help="which pooled stage features selection and the probe see (the engine's: both)",
    )
    args = p.parse_args()
    console = Console(stderr=True)
    started = time.perf_counter()
    # The cpu recipe's pretraining (the default without CUDA), on a class-balanced slice.
    config = with_overrides(
        preset("cpu"),
        {
            "data.source": str(Path(args.data).resolve()),
            "data.cache_dir": args.cache_dir,
            "data.train_limit": args.train,
            "data.test_limit": args.test,
            "model.width": args.width,
            "pretrain.epochs": args.pretrain_epochs,
            "device": args.device,
        },
    )
    checkpoint = args.pretrained or args.out / "pretrain" / "checkpoints" / "pretrain.pt"
    pretrain_seconds = 0.0
    if not checkpoint.exists():
        result = pretrain_into(config, args.out / "pretrain")
        pretrain_seconds = result["seconds"]
        console.print(
            f"rotation accuracy {result['rotation_accuracy']:.3f} ({pretrain_seconds:.0f} s)"
        )
    device = resolve_device(args.device)
    configure(device)
    images = load_dataset(config.data, config.seed)
    data = DeviceData(images, device)
    model = build_model(config, 4, device)
    pretrained = PretrainCheckpoint.read(checkpoint)
    pretrained.load_into(model, config, str(checkpoint))

    width = 4 * args.width  # the third stage's share of the embedding

    def embed(pixels: torch.Tensor) -> torch.Tensor:
        both = pool_pass(model, pixels, data, 512)[2].cpu()  # (N, 4w + 8w), each part unit length
        part = {"both": both, "third": both[:, :width], "last": both[:, width:]}
        return part[args.embedding]

    train, test = embed(data.train_images), embed(data.test_images)
    labels, test_labels = data.train_labels.cpu(), data.test_labels.cpu()
    priority = torch.from_numpy(item_priority(images.train.digests, config.seed))
    budgets = [int(b) for b in args.budgets.split(",")]
    strategies = [s.strip() for s in args.strategies.split(",")]
    results: dict[str, list[list[float]]] = {}
    for name in strategies:
        results[name] = [
            run_strategy(
                name, seed, train, labels, test, test_labels, priority, budgets, data.num_classes
            )
            for seed in range(args.seeds)
        ]
        console.print(f"[dim]{name}: done ({time.perf_counter() - started:.0f} s)")
    report = summarize(results, budgets, "random")
    report["aubc"] = overall(results, "random")
    report.update(
        {
            "budgets": budgets,
            "seeds": args.seeds,
            "train": data.num_train,
            "test": int(data.test_images.shape[0]),
            "width": args.width,
            "embedding": args.embedding,
            "rotation_accuracy": pretrained.results.get("rotation_accuracy", math.nan),
            "pretrain_seconds": pretrain_seconds,
            "seconds": time.perf_counter() - started,
            "all_labels_probe": all_labels_probe(
                train, labels, test, test_labels, data.num_classes
            ),
        }
    )
    console.print(table(report))
    json.dump(report, sys.stdout)
    print()


def all_labels_probe(
    train: torch.Tensor,
    labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    classes: int,
) -> float:
    """The ceiling of these features: the probe on every training label."""
    w = fit_probe(train, labels, classes, torch.Generator().manual_seed(0))
    return float((probe_probs(w, test).mean(0).argmax(1) == test_labels).float().mean())


def overall(results: dict[str, list[list[float]]], baseline: str) -> list[dict[str, Any]]:
    """Per strategy, the mean accuracy over the budgets (each budget doubles the one before,
    so this is the area under the curve on a log-budget axis) and its paired difference to
    the baseline over seeds, with a 95% interval."""
    base = results.get(baseline)
    out = []
    for name, runs in results.items():
        mine = [sum(r) / len(r) for r in runs]
        diff = None
        if base and name != baseline:
            diff = Estimate.of([m - sum(b) / len(b) for m, b in zip(mine, base, strict=True)])
        out.append(
            {
                "strategy": name,
                "aubc": Estimate.of(mine).mean,
                "diff": diff.mean if diff else None,
                "diff_low": diff.low if diff else None,
                "diff_high": diff.high if diff else None,
            }
        )
    return out


def summarize(
    results: dict[str, list[list[float]]], budgets: list[int], baseline: str
) -> dict[str, Any]:
    rows = []
    base = results.get(baseline)
    for name, runs in results.items():
        for i, budget in enumerate(budgets):
            accs = [r[i] for r in runs]
            acc = Estimate.of(accs)
            diff = (
                Estimate.of([r[i] - b[i] for r, b in zip(runs, base, strict=True)])
                if base and name != baseline
                else None
            )
            rows.append(
                {
                    "strategy": name,
                    "labels": budget,
                    "mean": acc.mean,
                    "std": acc.std,
                    "diff": diff.mean if diff else None,
                    "diff_low": diff.low if diff else None,
                    "diff_high": diff.high if diff else None,
                }
            )
    return {"rows": rows}


def table(report: dict[str, Any]) -> Table:
    """A row per strategy, a column per budget: accuracy, then minus random [95% interval]."""
    out = Table(title=f"probe test accuracy over {report['seeds']} seeds; minus random [95% CI]")
    out.add_column("strategy")
    for budget in report["budgets"]:
        out.add_column(f"{budget} labels", justify="right")
    out.add_column("AUBC", justify="right")
    aubc = {r["strategy"]: r for r in report["aubc"]}
    for s in dict.fromkeys(r["strategy"] for r in report["rows"]):
        cells = []
        for budget in report["budgets"]:
            r = next(x for x in report["rows"] if x["strategy"] == s and x["labels"] == budget)
            text = f"{r['mean']:.3f}"
            if r["diff"] is not None:
                ahead = r["diff_low"] > 0
                behind = r["diff_high"] < 0
                colour = "green" if ahead else "red" if behind else "dim"
                text += (
                    f"\n[{colour}]{r['diff']:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}][/]"
                )
            cells.append(text)
        a = aubc[s]
        total = f"{a['aubc']:.3f}"
        if a["diff"] is not None:
            total += f"\n{a['diff']:+.3f} [{a['diff_low']:+.3f}, {a['diff_high']:+.3f}]"
        cells.append(total)
        out.add_row(s, *cells)
    return out


if __name__ == "__main__":
    main()
