"""`salal-core bench`: the speed figures of one machine, as JSON.

Each phase is timed the way the engine runs it (same functions, same batches), after a
warm-up that pays for cuDNN autotuning and compiling, with the device synchronised before
every clock reading. Beside them, the same model trained the way the usual PyTorch CIFAR-10
tutorial writes it (a torchvision DataLoader over PIL images), so the ratio says what the fast
path buys. `--ablate` times the engine's phases again with one speed switch changed at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from ..acquire import get as get_acquisition
from ..acquire import top_k
from ..config import RunConfig, validate, with_overrides
from ..data import DeviceData, ImageSet, load_dataset
from ..data.load import cache_folder
from ..factory import build_engine
from ..model import Net
from ..options import (
    add_active_options,
    add_data_options,
    add_model_options,
    config_from_args,
    parse_name_list,
)
from ..pretrain import build_model
from ..progress import RichProgress
from ..runtime import configure, cuda_oom_hint, resolve_device, seed_everything
from ..train import make_optimizer, make_schedule, predict, train_epoch

POOL = 40_000  # the pool size the scoring figure is quoted for (CIFAR-10 after 10k labels)
WARMUP_STEPS = 3

# One switch changed from the run's own speed settings per variant, and whether it can only
# differ on CUDA (on the CPU, bf16, channels_last, the fused step and CUDA graphs are off anyway).
ABLATIONS: dict[str, tuple[dict[str, Any], bool]] = {
    "as-configured": ({}, False),
    "fp32": ({"bf16": False}, True),
    "nchw": ({"channels_last": False}, True),
    "unfused-optimizer": ({"fused_optimizer": False}, True),
    "compile": ({"compile": "default"}, False),
    "compile-max-autotune": ({"compile": "max-autotune-no-cudagraphs"}, False),
    "cuda-graphs": ({"compile": "reduce-overhead"}, True),
}


class Phases:
    """Minutes of timing should show progress: a spinner while each phase runs (on a
    terminal), then one line on stderr with what it took; stdout stays the JSON."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextlib.contextmanager
    def __call__(self, label: str, spinner: bool = True) -> Iterator[None]:
        """`spinner=False` for a phase that draws its own progress: Rich before 14 (which the
        dependency range allows) refuses a live display inside another."""
        start = time.perf_counter()
        with self.console.status(f"{label}…") if spinner else contextlib.nullcontext():
            yield
        self.console.print(f"[green]done[/] {label} [dim]({time.perf_counter() - start:.1f} s)")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_host_syncs(device: torch.device, fn: Callable[[], Any]) -> int | None:
    """How often `fn` makes the host wait for the GPU, by torch's sync debug mode (which sees
    `.item()`, `.cpu()`, `nonzero` and the like, though not an explicit synchronize)."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing CUDA operation" in str(w.message) for w in caught)


def train_throughput(
    config: RunConfig, data: DeviceData, rotation: bool, steps: int
) -> dict[str, float]:
    """Network inputs per second of the engine's own training step, rotation or classes (in
    rotation, each of an image's four turns is an input, as in the FLOP count per image)."""
    cfg = config.pretrain.optim if rotation else config.active.optim
    model = build_model(config, 4 if rotation else data.num_classes, data.device)
    batch = min(cfg.batch_size, data.num_train)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_schedule(optimizer, cfg, (WARMUP_STEPS + steps) * 2)
    targets = None if rotation else data.train_labels.clamp_min(0)
    generator = torch.Generator(device=data.device).manual_seed(0)

    def run(n_steps: int) -> float:
        indices = torch.randperm(data.num_train, device=data.device, generator=generator)
        indices = indices[: min(data.num_train, n_steps * batch)]
        stats = train_epoch(
            model,
            optimizer,
            scheduler,
            data,
            indices,
            targets,
            batch_size=batch,
            generator=generator,
        )
        return stats.images / stats.seconds

    start = time.perf_counter()
    run(WARMUP_STEPS)
    sync(data.device)
    warmup = time.perf_counter() - start  # autotuning, and compiling when asked
    return {
        "images_per_second": run(steps),
        "batch_size": batch,
        "warmup_seconds": warmup,
        "host_syncs_per_epoch": count_host_syncs(data.device, lambda: run(WARMUP_STEPS)),
    }


def scoring_seconds(config: RunConfig, data: DeviceData) -> dict[str, float]:
    """Score a pool of (up to) 40,000 images and pick the query, as a round does."""
    scorer = get_acquisition(config.active.acquisition)
    members = config.active.committee if scorer.committee else 1
    model = build_model(config, data.num_classes, data.device, members)
    pool = data.train_images[: min(POOL, data.num_train)]
    priority = torch.randperm(pool.shape[0], device=data.device)
    k = min(config.query_count(data.num_train), pool.shape[0])

    def score() -> float:
        sync(data.device)
        start = time.perf_counter()
        probs = predict(model, pool, data, config.eval_batch_size)
        chosen = top_k(scorer.score(probs, None), k, priority)
        chosen.cpu()  # the query leaves the device: that is the end of scoring
        return time.perf_counter() - start

    warmup = score()  # autotuning, allocator, compiling when asked
    return {
        "seconds": min(score() for _ in range(3)),
        "pool": int(pool.shape[0]),
        "warmup_seconds": warmup,
        "host_syncs": count_host_syncs(data.device, score),
    }


class TutorialCifar(Dataset):
    """CIFAR-10 as torchvision.datasets.CIFAR10 serves it: one PIL image per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:  # noqa: ANN001
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def naive_throughput(
    config: RunConfig, data: DeviceData, images: np.ndarray, labels: np.ndarray, steps: int
) -> dict[str, float]:
    """The same network trained as the tutorial does: DataLoader workers decoding and
    augmenting PIL images, fp32, a host sync per step for the running loss."""
    import torchvision.transforms as T

    device, cfg = data.device, config.active.optim
    workers = min(8, os.cpu_count() or 1)  # the tutorial's habit, capped by this machine
    transform = T.Compose(
        [
            T.RandomCrop(images.shape[1], padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(data.mean.tolist(), data.std.tolist()),
        ]
    )
    loader = DataLoader(
        TutorialCifar(images, np.maximum(labels, 0), transform),
        batch_size=min(cfg.batch_size, len(images)),
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=True,
    )
    model = Net(config.model.width, data.num_classes).to(device)  # NCHW, fp32: as written there
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    seen, start, step, running_loss = 0, 0.0, 0, 0.0
    while step < WARMUP_STEPS + steps:
        for x, y in loader:
            if step == WARMUP_STEPS:
                sync(device)
                start, seen = time.perf_counter(), 0
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x)[:, 0], y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            seen += len(y)
            step += 1
            if step == WARMUP_STEPS + steps:
                break
    sync(device)
    return {"images_per_second": seen / (time.perf_counter() - start), "workers": workers}


def decode_seconds(config: RunConfig) -> tuple[dict[str, float], ImageSet]:
    """A first load into an empty cache (decoding everything), then a load from the cache as
    every later run makes it. The new cache becomes the configured one, so the source is
    decoded once however the bench goes on (on a fresh machine that is most of a minute)."""
    cache = cache_folder(config.data)
    with tempfile.TemporaryDirectory(dir=cache) as empty:
        start = time.perf_counter()
        load_dataset(with_overrides(config, {"data.cache_dir": empty}).data, config.seed)
        cold = time.perf_counter() - start
        for decoded in Path(empty).iterdir():
            if not (cache / decoded.name).exists():
                decoded.rename(cache / decoded.name)  # same folder tree: no copy
    start = time.perf_counter()
    images = load_dataset(config.data, config.seed)
    return {"cold_seconds": cold, "warm_seconds": time.perf_counter() - start}, images


def end_to_end(config: RunConfig, console: Console) -> dict[str, Any]:
    """The preset's whole run, the ground truth answering: pretraining, every round."""
    with tempfile.TemporaryDirectory() as out, RichProgress(console) as progress:
        summary = build_engine(config, Path(out) / "run", oracle="auto", emit=progress).run()
    return {
        "seconds": summary["seconds"],
        "final_test_accuracy": summary["final_test_accuracy"],
        "rounds": len(summary["curve"]),
    }


def engine_figures(
    config: RunConfig, data: DeviceData, steps: int, phase: Phases, variant: str = ""
) -> dict[str, Any]:
    """Pretraining and fine-tuning throughput and pool scoring, as the engine runs them."""
    suffix = f" ({variant})" if variant else ""
    figures = {}
    with phase(f"rotation pretraining{suffix}"):
        figures["pretrain"] = train_throughput(config, data, rotation=True, steps=steps)
    with phase(f"fine-tuning{suffix}"):
        figures["finetune"] = train_throughput(config, data, rotation=False, steps=steps)
    with phase(f"scoring the pool{suffix}"):
        figures["score_pool"] = scoring_seconds(config, data)
    return figures


def ablation(
    config: RunConfig, data: DeviceData, steps: int, names: list[str], phase: Phases
) -> dict[str, dict[str, Any]]:
    """The engine's figures once per variant, each changing one speed switch."""
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        change, cuda_only = ABLATIONS[name]
        speed = replace(config.speed, **change)
        if cuda_only and data.device.type != "cuda":
            results[name] = {"skipped": "differs only on CUDA"}
            continue
        torch._dynamo.reset()  # each variant compiles afresh, and within the recompile limit
        configure(data.device, speed)
        try:
            figures = engine_figures(config, data, steps, phase, name)
        finally:
            configure(data.device, config.speed)
        results[name] = {"speed": vars(speed), **figures}
    return results


def parse_ablations(text: str | None) -> list[str]:
    """`--ablate` with no list means every variant; otherwise names, comma separated."""
    if text is None:
        return []
    names = parse_name_list(text, ["all", *ABLATIONS], "--ablate variant")
    return list(ABLATIONS) if "all" in names else names


def run_bench(
    config: RunConfig,
    steps: int,
    skip_end_to_end: bool = False,
    ablate: list[str] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    validate(config)
    phase = Phases(console)
    device = resolve_device(config.device)
    configure(device, config.speed)
    seed_everything(config.seed)
    result: dict[str, Any] = {
        "preset": config.preset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "host": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": dt.date.today().isoformat(),
        "data": config.data.source,
        "speed": vars(config.speed),
    }
    with cuda_oom_hint():
        with phase("decoding, cold and warm"):
            result["decode"], images = decode_seconds(config)
            data = DeviceData(images, device)
        result["train_images"] = data.num_train
        result.update(engine_figures(config, data, steps, phase))
        with phase("the tutorial's DataLoader pipeline"):
            naive = naive_throughput(config, data, images.train.images, images.train.labels, steps)
        result["naive_finetune"] = naive
        result["finetune_speedup_over_naive"] = (
            result["finetune"]["images_per_second"] / naive["images_per_second"]
        )
        if ablate:
            result["ablation"] = ablation(config, data, steps, ablate, phase)
        if not skip_end_to_end:
            with phase(f"a whole {config.preset} run", spinner=False):
                result["end_to_end"] = end_to_end(config, phase.console)
    return result


def summary_tables(result: dict[str, Any]) -> list[Table]:
    """The figures people read: one table of the run's, one row per ablated variant."""
    figures = Table(title=f"salal bench: {result['device']}, preset {result['preset']}")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    decode = result["decode"]
    figures.add_row(
        "decode, cold / warm", f"{decode['cold_seconds']:.1f} s / {decode['warm_seconds']:.2f} s"
    )
    figures.add_row("rotation pretraining", f"{result['pretrain']['images_per_second']:,.0f} img/s")
    figures.add_row("fine-tuning", f"{result['finetune']['images_per_second']:,.0f} img/s")
    figures.add_row(
        "tutorial DataLoader pipeline",
        f"{result['naive_finetune']['images_per_second']:,.0f} img/s "
        f"(salal {result['finetune_speedup_over_naive']:.2f}x faster)",
    )
    score = result["score_pool"]
    figures.add_row(f"scoring {score['pool']:,} pool images", f"{score['seconds']:.3f} s")
    if "end_to_end" in result:
        end = result["end_to_end"]
        figures.add_row(
            f"whole run, {end['rounds']} rounds",
            f"{end['seconds']:.1f} s, accuracy {end['final_test_accuracy']:.3f}",
        )
    tables = [figures]
    if "ablation" in result:
        variants = Table(title="one speed switch changed at a time")
        for name in ("variant", "pretraining img/s", "fine-tuning img/s", "scoring s", "warm-up s"):
            variants.add_column(name, justify="left" if name == "variant" else "right")
        for name, row in result["ablation"].items():
            if "skipped" in row:
                variants.add_row(name, row["skipped"], "", "", "", style="dim")
                continue
            warmup = sum(row[p]["warmup_seconds"] for p in ("pretrain", "finetune", "score_pool"))
            variants.add_row(
                name,
                f"{row['pretrain']['images_per_second']:,.0f}",
                f"{row['finetune']['images_per_second']:,.0f}",
                f"{row['score_pool']['seconds']:.3f}",
                f"{warmup:.1f}",
            )
        tables.append(variants)
    return tables


def cmd_bench(args: argparse.Namespace) -> int:
    ablate = parse_ablations(args.ablate)
    console = Console(stderr=True)
    result = run_bench(config_from_args(args), args.steps, args.no_end_to_end, ablate, console)
    for table in summary_tables(result):
        console.print(table)
    print(json.dumps(result, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed figures of this machine as JSON")
    add_data_options(p)
    add_model_options(p)
    add_active_options(p)
    p.add_argument(
        "--steps", type=int, default=50, help="timed training steps per figure (default 50)"
    )
    p.add_argument(
        "--no-end-to-end", action="store_true", help="skip the whole-run figure (the longest)"
    )
    p.add_argument(
        "--ablate",
        nargs="?",
        const="all",
        metavar="A,B,...",
        help="time the engine again with one speed switch changed per variant: "
        f"{', '.join(ABLATIONS)} (default: all of them)",
    )
    p.set_defaults(func=cmd_bench)
