"""A folder and its rotation-pretrained backbone as the cpu recipe's engine sees them, for the
study scripts: the run config they share, and the network with its BatchNorm statistics
recomputed over the upright pool, as the engine recomputes them before it scores or probes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from salal_core.config import HeadInput, RunConfig, preset, with_overrides
from salal_core.data import DeviceData
from salal_core.learn.batchnorm import recalibrate
from salal_core.learn.model import Net
from salal_core.learn.pretrain import PretrainCheckpoint


def folder_config(
    folder: Path, cache: Path, width: int, overrides: Mapping[str, object] | None = None
) -> RunConfig:
    """The cpu recipe on the CPU over `folder`, decoded into `cache`, at `width`."""
    return with_overrides(
        preset("cpu"),
        {
            "device": "cpu",
            "data.source": str(folder.resolve()),
            "data.cache_dir": str(cache.resolve()),
            "model.width": width,
            **(overrides or {}),
        },
    )


def pretrained_net(
    config: RunConfig, data: DeviceData, checkpoint: Path, head_input: HeadInput = "last"
) -> Net:
    """A `Net` with the backbone of `checkpoint` (a pretrain.pt), its statistics recomputed."""
    model = Net(config.model.width, data.num_classes, head_input=head_input)
    PretrainCheckpoint.read(checkpoint).load_into(model, config, str(checkpoint))
    recalibrate(model, data, torch.arange(data.num_train), rotate=False)
    return model
