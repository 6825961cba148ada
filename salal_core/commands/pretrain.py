"""`salal-core pretrain`: rotation pretraining alone, into a run directory."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from .. import distributed, group
from ..config import RunConfig, validate
from ..data import DeviceData, load_dataset
from ..events import EpochEnded, Notice, Recorder, fan_out
from ..options import config_from_args
from ..plan import PretrainPlan
from ..pretrain import pretrain, pretrain_payload
from ..progress import RichProgress
from ..runtime import compile_notice, cuda_oom_hint, resolve_device, set_up
from ..store import RunStore


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
            path = store.save_checkpoint("pretrain", pretrain_payload(model, config, results))
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
