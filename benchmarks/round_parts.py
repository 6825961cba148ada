"""Where a fine-tuning round's time goes: training, BatchNorm, evaluation, pool pass, selection.

One rotation-pretrained backbone (a `pretrain.pt`, as `small_folders.py` leaves under its
folder's `pretrain/checkpoints`) and one set of random labels; then, interleaved in one process
so that the machine's speed is the same for each, the cpu recipe's round as the engine runs it
at or past `finetune_from` labels (`fit`: its 100 steps, the statistics recomputed and the test
split measured after each epoch), then the pool pass and badge's selection of the next query.
Each round starts from the pretrained weights, with the last-stage head and with the
every-stage head, in 5 epochs (`salal-core run`) and in 2 (`salal-tui`): the steps are the
same, the evaluations are not. `--eval-batches 512,64` also times each inference batch size
(the test split, the pool pass) side by side.

    python benchmarks/small_folders.py --folders 5000 --out runs/sf      # leaves the backbone
    python benchmarks/round_parts.py --folder runs/sf/folders/5000 \\
        --pretrained runs/sf/5000/pretrain/checkpoints/pretrain.pt

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
from typing import Any, cast

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from cpu_backbone import folder_config, pretrained_net
from salal_core.config import (
    HEAD_INPUTS,
    HUMAN_ACTIVE,
    HUMAN_EPOCHS_PER_ROUND,
    HeadInput,
    RunConfig,
    preset,
    with_overrides,
)
from salal_core.data import DeviceData, load_dataset
from salal_core.events import EpochEnded, Event, PhaseStarted
from salal_core.learn.inference import evaluate, pool_pass
from salal_core.learn.train import fit
from salal_core.selection import acquire
from salal_core.selection.pool import Pool


@dataclass(frozen=True)
class RoundParts:
    """Seconds of one round, by part; `fit` is training + evaluation + the rest of `fit`."""

    head_input: HeadInput
    epochs: int
    eval_batch_size: int  # the test split's and the pool pass's batches
    steps: int  # optimizer steps in the round, all epochs
    evaluations: int  # times the test split was measured
    training: float  # the optimizer steps
    evaluation: float  # the test split, after each epoch
    batchnorm_and_rest: float  # statistics recomputed after each epoch, events, schedule
    pool_pass: float
    selection: float

    @property
    def total(self) -> float:
        parts = (self.training, self.evaluation, self.batchnorm_and_rest, self.pool_pass)
        return sum(parts) + self.selection


def one_round(
    config: RunConfig,
    data: DeviceData,
    checkpoint: Path,
    labeled: torch.Tensor,
    head_input: HeadInput,
    epochs: int,
    query: int,
) -> RoundParts:
    """One timed round; the inference batch is `config.eval_batch_size`."""
    torch.manual_seed(0)  # the head's initial weights
    model = pretrained_net(config, data, checkpoint, head_input)
    evaluations: list[float] = []
    epoch_seconds: list[float] = []
    steps: list[int] = []

    def measured() -> tuple[float, float]:
        started = time.perf_counter()
        out = evaluate(model, data.test_images, data.test_labels, data, config.eval_batch_size)
        evaluations.append(time.perf_counter() - started)
        return out

    def on_event(event: Event) -> None:
        if isinstance(event, EpochEnded):
            epoch_seconds.append(event.seconds)
        elif isinstance(event, PhaseStarted):
            steps.append(event.epochs * event.steps_per_epoch)

    started = time.perf_counter()
    fit(
        model,
        data,
        labeled,
        data.train_labels,
        config.active.optim,
        epochs,
        phase="finetune",
        round_=1,
        evaluate_fn=measured,
        emit=on_event,
        generator=torch.Generator().manual_seed(1),
    )
    fit_seconds = time.perf_counter() - started
    unlabeled = torch.ones(data.num_train, dtype=torch.bool)
    unlabeled[labeled] = False
    started = time.perf_counter()
    probs, features, embeddings = pool_pass(
        model, data.train_images[unlabeled], data, config.eval_batch_size
    )
    pass_seconds = time.perf_counter() - started
    strategy = acquire.get(str(HUMAN_ACTIVE["acquisition"]))
    pool = Pool(probs, features, embeddings, embeddings[:0], torch.randperm(int(unlabeled.sum())))
    started = time.perf_counter()
    strategy.select(pool, query, torch.Generator().manual_seed(2))
    select_seconds = time.perf_counter() - started
    training, evaluation = sum(epoch_seconds), sum(evaluations)
    return RoundParts(
        head_input,
        epochs,
        config.eval_batch_size,
        sum(steps),
        len(evaluations),
        training,
        evaluation,
        fit_seconds - training - evaluation,
        pass_seconds,
        select_seconds,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--folder", type=Path, required=True, help="an image folder with train/test")
    p.add_argument("--pretrained", type=Path, required=True, help="a rotation pretrain.pt")
    p.add_argument("--width", type=int, default=preset("cpu").model.width)
    p.add_argument("--labels", type=int, default=80, help="random labels the round trains on")
    p.add_argument("--query", type=int, default=10, help="the next query's size")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--heads", default=",".join(HEAD_INPUTS), help="head inputs, comma-separated")
    p.add_argument("--epochs", help="epochs per round, comma-separated (default: run's, tui's)")
    p.add_argument(
        "--eval-batches",
        default=str(preset("cpu").eval_batch_size),
        help="inference batch sizes, comma-separated (default: the cpu recipe's)",
    )
    p.add_argument("--cache", type=Path, default=Path("runs/cache"))
    args = p.parse_args(argv)
    console = Console(stderr=True)
    config = folder_config(args.folder, args.cache, args.width)
    data = DeviceData(load_dataset(config.data, 0), torch.device("cpu"))
    labeled = torch.randperm(data.num_train, generator=torch.Generator().manual_seed(0))
    labeled = labeled[: args.labels]
    epoch_counts: tuple[int, ...] = (
        config.active.epochs_per_round,
        HUMAN_EPOCHS_PER_ROUND["cpu"],
    )
    if args.epochs:
        epoch_counts = tuple(int(e) for e in args.epochs.split(","))
    if unknown := set(args.heads.split(",")) - set(HEAD_INPUTS):
        p.error(f"--heads: {', '.join(sorted(unknown))} is not one of {', '.join(HEAD_INPUTS)}")
    heads = [cast(HeadInput, h) for h in args.heads.split(",")]
    shapes = [
        (head, epochs, int(batch))
        for batch in args.eval_batches.split(",")
        for epochs in epoch_counts
        for head in heads
    ]
    rounds: list[RoundParts] = []
    for repeat in range(args.repeats):
        for head, epochs, batch in shapes:
            sized = with_overrides(config, {"eval_batch_size": batch})
            rounds.append(
                one_round(sized, data, args.pretrained, labeled, head, epochs, args.query)
            )
            took = rounds[-1].total
            console.print(
                f"[dim]repeat {repeat}: {head}, {epochs} epochs, batch {batch}: {took:.1f} s"
            )
    parts = ("training", "evaluation", "batchnorm_and_rest", "pool_pass", "selection")
    table = Table(title=f"{args.folder.name}: one round on {args.labels} labels, median seconds")
    columns = ("head", "epochs", "eval batch", *(p.replace("_", " ") for p in parts), "round")
    for column in columns:
        table.add_column(column, justify="right")
    report: dict[str, Any] = {"labels": args.labels, "rounds": [asdict(r) for r in rounds]}
    for shape in shapes:
        mine = [r for r in rounds if (r.head_input, r.epochs, r.eval_batch_size) == shape]
        medians = {part: float(np.median([getattr(r, part) for r in mine])) for part in parts}
        total = float(np.median([r.total for r in mine]))
        head, epochs, batch = shape
        report.setdefault("medians", []).append(
            {"head_input": head, "epochs": epochs, "eval_batch_size": batch}
            | medians
            | {"total": total}
        )
        cells = (f"{medians[p]:.1f}" for p in parts)
        table.add_row(head, str(epochs), str(batch), *cells, f"{total:.1f}")
    console.print(table)
    json.dump(report, sys.stdout)
    print()
    return report


if __name__ == "__main__":
    main()
