"""What a run is built from, decided once by rank 0 (`RunPlan`), and the one way every rank
builds its model from it: restored from a round checkpoint, or a rotation backbone (loaded, or
pretrained now, every rank together) under a fresh head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from salal_core.config import RunConfig
from salal_core.data import DeviceData
from salal_core.events import Emit
from salal_core.files import read_payload_file
from salal_core.learn.model import Net
from salal_core.learn.pretrain import build_model, start_backbone
from salal_core.learn.watch import CollapseRule
from salal_core.run.checkpoint import (
    ModelShape,
    Resumed,
    RoundCheckpoint,
    restore_model,
)


@dataclass(frozen=True)
class PretrainPlan:
    """`salal-core pretrain` (and compare's shared pretraining): rotation pretraining alone."""

    config: RunConfig


@dataclass(frozen=True)
class RunPlan:
    """Everything a rank needs to build the same run as rank 0, decided by rank 0."""

    config: RunConfig
    run_dir: Path
    token: str  # what rank 0 wrote into the run directory, for every rank to read back
    class_names: tuple[str, ...]
    train_items: tuple[str, ...] | None  # the digests rank 0 loaded with (a resumed slice)
    shape: ModelShape
    checkpoint: Path | None  # the round checkpoint to resume from
    backbone: Path | None  # a pretrain.pt to start from; None: pretrain now, together
    on_collapse: CollapseRule  # "warn" in a person's session: every rank carries on alike


@dataclass(frozen=True)
class StartedModel:
    model: Net
    generator: torch.Generator  # the loop's (and the fine-tuning's) random stream
    resumed: Resumed
    pretrained: tuple[Net, dict[str, float]] | None  # pretrained now: for rank 0 to save


def rotation_source(config: RunConfig, checkpoints: Path) -> Path | None:
    """Where rotation features come from: --pretrained, the run's own earlier pretraining, or
    (None) nowhere yet."""
    if config.model.pretrained is not None:
        return Path(config.model.pretrained)
    own = checkpoints / "pretrain.pt"
    return own if own.exists() else None


def read_round(path: Path) -> RoundCheckpoint:
    payload = read_payload_file(path)
    return RoundCheckpoint.from_payload(payload, path.stem)


def start_model(
    plan: RunPlan,
    data: DeviceData,
    checkpoint: RoundCheckpoint | None,
    emit: Emit,
    before_pretraining: Callable[[Emit], Emit] = lambda emit: emit,
) -> StartedModel:
    """The run's model on this rank: `checkpoint` restored, or else the backbone under a new
    head (`before_pretraining` runs first: rank 0 asks a person's first images then, and gets
    the sink pretraining reports to, which asks more as they are answered)."""
    config, shape = plan.config, plan.shape
    model = build_model(config, data.num_classes, data.device, shape.members)
    generator = torch.Generator(device=data.device).manual_seed(config.seed + 1)
    if checkpoint is not None:
        resumed = restore_model(model, generator, checkpoint, shape)
        return StartedModel(model, generator, resumed, None)
    during = before_pretraining(emit)
    pretrained = start_backbone(model, config, data, plan.backbone, during, plan.on_collapse)
    model.replace_head(data.num_classes, shape.members)
    return StartedModel(model, generator, Resumed(0, (), None), pretrained)
