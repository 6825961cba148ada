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
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from salal_core import json_text
from salal_core.cli.commands.bench_figures import (
    BenchReport,
    Decode,
    EndToEnd,
    EngineFigures,
    Skipped,
    Variant,
    summary_tables,
)
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


def decode_seconds(config: RunConfig) -> tuple[Decode, ImageSet]:
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
    return Decode(cold, time.perf_counter() - start), images


def end_to_end(config: RunConfig, console: Console) -> EndToEnd:
    """The preset's whole run, the ground truth answering: pretraining, every round."""
    with tempfile.TemporaryDirectory() as out, RichProgress(console) as progress:
        summary = Engine.for_session(open_session(config, Path(out) / "run"), progress).run()
    return EndToEnd(summary.seconds, summary.final_accuracy, len(summary.curve))


def engine_figures(
    config: RunConfig, data: DeviceData, steps: int, phase: Phases, variant: str = ""
) -> EngineFigures:
    """Pretraining and fine-tuning throughput and pool scoring, as the engine runs them."""
    suffix = f" ({variant})" if variant else ""
    with phase(f"rotation pretraining{suffix}"):
        pretrain = train_throughput(config, data, rotation=True, steps=steps)
    with phase(f"fine-tuning{suffix}"):
        finetune = train_throughput(config, data, rotation=False, steps=steps)
    with phase(f"scoring the pool{suffix}"):
        score_pool = scoring_seconds(config, data)
    return EngineFigures(pretrain, finetune, score_pool)


def ablation(
    config: RunConfig, data: DeviceData, steps: int, names: list[str], phase: Phases
) -> dict[str, Variant | Skipped]:
    """The engine's figures once per variant, each changing one speed switch."""
    results: dict[str, Variant | Skipped] = {}
    for name in names:
        change, cuda_only = ABLATIONS[name]
        speed = replace(config.speed, **change)
        if cuda_only and data.device.type != "cuda":
            results[name] = Skipped("differs only on CUDA")
            continue
        torch._dynamo.reset()  # each variant compiles afresh, and within the recompile limit
        configure(data.device, speed)
        try:
            results[name] = Variant(speed, engine_figures(config, data, steps, phase, name))
        finally:
            configure(data.device, config.speed)
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
) -> BenchReport:
    validate(config)
    phase = Phases(console)
    device = resolve_device(config.device)
    configure(device, config.speed)
    seed_everything(config.seed)
    with cuda_oom_hint():
        with phase("decoding, cold and warm"):
            decode, images = decode_seconds(config)
            data = DeviceData(images, device)
        engine = engine_figures(config, data, steps, phase)
        with phase("the tutorial's DataLoader pipeline"):
            naive = naive_throughput(config, data, images.train.images, images.train.labels, steps)
        variants = ablation(config, data, steps, ablate, phase) if ablate else {}
        whole = None
        if not skip_end_to_end:
            with phase(f"a whole {config.preset} run", spinner=False):
                whole = end_to_end(config, phase.console)
    return BenchReport(
        preset=config.preset,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        host=platform.processor() or platform.machine(),
        cpu_threads=torch.get_num_threads(),
        torch=torch.__version__,
        date=dt.date.today().isoformat(),
        data=config.data.source,
        speed=config.speed,
        decode=decode,
        train_images=data.num_train,
        engine=engine,
        naive_finetune=naive,
        end_to_end=whole,
        ablation=variants,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    ablate = parse_ablations(args.ablate)
    console = Console(stderr=True)
    report = run_bench(config_from_args(args), args.steps, args.no_end_to_end, ablate, console)
    for table in summary_tables(report):
        console.print(table)
    print(json_text.dumps(report.to_json(), indent=1))
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
