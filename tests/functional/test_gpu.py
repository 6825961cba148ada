"""Checks that only a GPU can make (`python -m pytest -m gpu`); skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from helpers import drawn_data
from salal_core import runtime
from salal_core.cli.commands.bench_phases import count_host_syncs
from salal_core.config import PRESETS, OptimConfig, SpeedConfig, with_overrides
from salal_core.learn.inference import predict
from salal_core.learn.pretrain import build_model
from salal_core.learn.train import make_optimizer, make_schedule, train_epoch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("compile_mode", ["off", "reduce-overhead"])
def test_an_epoch_waits_for_the_gpu_twice_and_scoring_never(compile_mode: str) -> None:
    cuda = torch.device("cuda")
    runtime.configure(cuda, SpeedConfig(compile=compile_mode))
    try:
        data = drawn_data(n=256, device=cuda)
        model = build_model(with_overrides(PRESETS["tiny"], {"model.width": 8}), 4, cuda)
        stem = model.backbone.stem[0].weight
        assert stem.is_contiguous(memory_format=torch.channels_last)
        cfg = OptimConfig(batch_size=32)
        optimizer = make_optimizer(model, cfg)
        assert optimizer.defaults["fused"]
        scheduler = make_schedule(optimizer, cfg, 100)
        everything = torch.arange(data.num_train, device=cuda)

        def epoch() -> None:
            train_epoch(
                model,
                optimizer,
                scheduler,
                data,
                everything,
                None,
                steps=len(everything) // 32,
                batch_size=32,
            )

        def score() -> None:
            predict(model, data.test_images, data, batch_size=64)

        epoch()  # warm-up: autotuning, compiling, capturing graphs
        score()
        assert count_host_syncs(cuda, epoch) == 2  # the epoch's loss and accuracy
        assert count_host_syncs(cuda, score) == 0
    finally:
        runtime.configure(torch.device("cpu"))
        torch._dynamo.reset()
