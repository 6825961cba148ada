"""`salal-core pretrain`: rotation pretraining alone, into a run directory."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from salal_core import distributed
from salal_core.cli.options import config_from_args
from salal_core.cli.progress import RichProgress
from salal_core.config import RunConfig
from salal_core.config_checks import validate
from salal_core.data import DeviceData, load_dataset
from salal_core.events import EpochEnded, Notice, Recorder, fan_out
from salal_core.learn.pretrain import PretrainCheckpoint, pretrain
from salal_core.run import group
from salal_core.run.plan import PretrainPlan
from salal_core.run.store import RunStore
from salal_core.runtime import compile_notice, cuda_oom_hint, resolve_device, set_up


def run_pretrain(args: argparse.Namespace) -> dict[str, Any]:
    return pretrain_into(config_from_args(args), args.out, quiet=args.json)


def pretrain_into(config: RunConfig, out: Path, quiet: bool = False) -> dict[str, Any]:
    """Pretrain into the run directory `out`; returns the figures written to its summary."""
    validate(config)
    resolve_device(config.device)  # a missing GPU is one line before anything is written
    store = RunStore(out, create=True)
    try:
        store.save_config(config)
        device = set_up(config)
        recorder = Recorder()
        start = time.perf_counter()
        with RichProgress(quiet=quiet) as progress, cuda_oom_hint():
            emit = fan_out(store.on_event, recorder, progress)
            if notice := compile_notice():
                emit(Notice(notice))
            images = load_dataset(config.data, config.seed, emit)
            # Told once rank 0 has loaded: the decode cache is written, the others read it.
            group.tell(PretrainPlan(config))
            with group.in_step():  # every rank pretrains alongside
                data = DeviceData(images, device, shard=distributed.shard())
                generator = torch.Generator(device=device).manual_seed(config.seed)
                model, results = pretrain(config, data, emit, generator)
            path = store.save_checkpoint(
                "pretrain", PretrainCheckpoint.of(model, config, results).to_payload()
            )
        epochs = recorder.of(EpochEnded)
        # The first epoch pays for cuDNN autotuning and compilation; report the steady state.
        steady = epochs[1:] or epochs
        result = {
            "preset": config.preset,
            "epochs": len(epochs),
            "rotation_accuracy": results.get("rotation_accuracy", float("nan")),
            "rotation_loss": results.get("rotation_loss", float("nan")),
            "images_per_second": statistics.mean(e.images_per_second for e in steady)
            if steady
            else 0.0,
            "seconds": time.perf_counter() - start,
            "device": str(device),
            "checkpoint": str(path),
        }
        store.write_summary(result)
        return result
    finally:
        store.close()
