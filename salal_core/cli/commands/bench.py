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
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from salal_core.cli.commands.bench_phases import (
    naive_throughput,
    scoring_seconds,
    train_throughput,
)
from salal_core.cli.options import (
    Subparsers,
    add_active_options,
    add_data_options,
    add_model_options,
    config_from_args,
    parse_name_list,
)
from salal_core.cli.progress import RichProgress
from salal_core.config import RunConfig, with_overrides
from salal_core.config_checks import validate
from salal_core.data import DeviceData, ImageSet, load_dataset
from salal_core.data.load import cache_folder
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.runtime import configure, cuda_oom_hint, resolve_device, seed_everything

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
        summary = Engine.for_session(open_session(config, Path(out) / "run"), progress).run()
    return {
        "seconds": summary.seconds,
        "final_test_accuracy": summary.final_accuracy,
        "rounds": len(summary.curve),
    }


def engine_figures(
    config: RunConfig, data: DeviceData, steps: int, phase: Phases, variant: str = ""
) -> dict[str, Any]:
    """Pretraining and fine-tuning throughput and pool scoring, as the engine runs them."""
    suffix = f" ({variant})" if variant else ""
    figures: dict[str, dict[str, Any]] = {}
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
    figures.add_row(
        f"scoring {score['pool']:,} pool images ({score['acquisition']})",
        f"{score['seconds']:.3f} s: pool pass {score['pool_pass_seconds']:.3f} s, "
        f"selection {score['select_seconds']:.3f} s",
    )
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


def register(sub: Subparsers) -> None:
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
