"""Rotation pretraining: learn features with no labels by predicting the turn of each image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from salal_core.config import RunConfig
from salal_core.config_io import to_dict
from salal_core.data import DeviceData
from salal_core.distributed import sync_batchnorm
from salal_core.errors import SalalError
from salal_core.events import Emit, Notice, PhaseChanged
from salal_core.files import read_payload_file
from salal_core.learn.inference import evaluate
from salal_core.learn.model import Net
from salal_core.learn.train import fit
from salal_core.learn.watch import CollapseRule
from salal_core.runtime import compile_model, memory_format

EVAL_LIMIT_WITHOUT_TEST = 2000


def build_model(
    config: RunConfig, classes: int, device: torch.device, members: int = 1, rotation: bool = False
) -> Net:
    """The network on `device`, its head reading what the recipe says; the rotation task's
    head always reads the last stage, so a pretrained backbone is the same whatever head the
    run puts on it."""
    head_input = "last" if rotation else config.model.head_input
    model = Net(config.model.width, classes, members, head_input).to(device)
    if config.parallel.sync_bn:
        model = sync_batchnorm(model)
    model = model.to(memory_format=memory_format(device))
    compile_model(model)  # in place: the module keeps its type and its state dict's names
    return model


def pretrain(
    config: RunConfig,
    data: DeviceData,
    emit: Emit,
    generator: torch.Generator | None = None,
    on_collapse: CollapseRule = "stop",
) -> tuple[Net, dict[str, float]]:
    """Train a 4-way rotation head on every training image; returns the model and its figures."""
    cfg = config.pretrain
    if cfg.optim.optimizer == "adam" and cfg.optim.lr >= 0.01:
        emit(
            Notice(
                f"pretraining with Adam at lr {cfg.optim.lr}, as the write-up states; that is "
                "far above Adam's usual 1e-3 and may diverge (see README, Recipes)"
            )
        )
    model = build_model(config, 4, data.device, rotation=True)
    # Without a test split, measure rotation accuracy on a slice of the (unlabeled) pool.
    # (Each rank holds its share of either; evaluation adds the shares up.)
    held_out = (
        data.test_images
        if data.num_test
        else data.train_images[: EVAL_LIMIT_WITHOUT_TEST // data.shard.size]
    )
    emit(PhaseChanged("pretrain", f"rotation pretraining, {cfg.epochs} epochs"))
    indices = torch.arange(data.num_train, device=data.device)
    if 0 < cfg.limit < data.num_train:  # a seeded sample: the cpu recipe's way to minutes
        indices = indices[
            torch.randperm(data.num_train, generator=generator, device=data.device)[: cfg.limit]
        ]
    results: dict[str, float] = {}

    def evaluate_fn() -> tuple[float, float]:
        loss, acc = evaluate(model, held_out, None, data, config.eval_batch_size)
        results.update(rotation_loss=loss, rotation_accuracy=acc)
        return loss, acc

    if cfg.epochs > 0:
        fit(
            model,
            data,
            indices,
            None,
            cfg.optim,
            cfg.epochs,
            phase="pretrain",
            round_=0,
            evaluate_fn=evaluate_fn,
            emit=emit,
            generator=generator,
            on_collapse=on_collapse,
        )
    return model, results


PRETRAIN_VERSION = 1  # files written before the version existed read as 0


@dataclass(frozen=True)
class PretrainCheckpoint:
    """What a pretrain.pt holds: the rotation network's weights, the width they fit, the
    config they were trained with and the held-out rotation figures. Saved as a dict of
    tensors and plain values, so that it loads with `weights_only`."""

    model: dict[str, torch.Tensor]
    width: int
    config: dict[str, Any]
    results: dict[str, float]

    @classmethod
    def of(cls, model: Net, config: RunConfig, results: dict[str, float]) -> PretrainCheckpoint:
        return cls(model.state_dict(), config.model.width, to_dict(config), dict(results))

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": "pretrain",
            "version": PRETRAIN_VERSION,
            "model": self.model,
            "width": self.width,
            "config": self.config,
            "results": self.results,
        }

    @classmethod
    def read(cls, path: Path) -> PretrainCheckpoint:
        """The one loader, whichever command reads the file: a missing, unreadable, foreign or
        newer file is one line (exit 2), never a traceback."""
        if not path.exists():
            raise SalalError(f"{path} does not exist; pass a pretrain.pt from an earlier run")
        try:
            payload = read_payload_file(path)
        except Exception as exc:  # torn file, not a checkpoint, refused pickle
            raise SalalError(
                f"{path} is not a readable checkpoint ({exc.__class__.__name__})"
            ) from None
        if not isinstance(payload, dict) or payload.get("kind") != "pretrain":
            raise SalalError(f"{path} is not a salal pretraining checkpoint")
        version = payload.get("version", 0)
        if not isinstance(version, int) or version > PRETRAIN_VERSION:
            raise SalalError(
                f"{path} was written by a newer salal (pretrain version {version}); upgrade salal"
            )
        try:
            if version == 0:  # the figures sat beside the weights
                fixed = {"kind", "model", "config", "width"}
                results = {k: float(v) for k, v in payload.items() if k not in fixed}
            else:
                results = {str(k): float(v) for k, v in payload["results"].items()}
            return cls(dict(payload["model"]), int(payload["width"]), payload["config"], results)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise SalalError(f"{path} is a damaged pretraining checkpoint") from None

    def load_into(self, model: Net, config: RunConfig, source: str) -> None:
        """The rotation backbone into `model`, refusing one of another shape."""
        if self.width != config.model.width:
            raise SalalError(
                f"{source} was trained with --width {self.width} but this run uses "
                f"{config.model.width}; pass the matching --width or --preset"
            )
        try:
            model.load_backbone(self.model)
        except RuntimeError as exc:
            raise SalalError(
                f"{source} does not fit this model ({str(exc).splitlines()[0]})"
            ) from None


def start_backbone(
    model: Net,
    config: RunConfig,
    data: DeviceData,
    source: Path | None,
    emit: Emit,
    on_collapse: CollapseRule = "stop",
) -> tuple[Net, dict[str, float]] | None:
    """Rotation features into `model`: from `source` (a pretrain.pt: --pretrained, or this
    run's own), or by pretraining now, which returns the rotation model and its figures for
    rank 0 to save."""
    if source is not None:
        PretrainCheckpoint.read(source).load_into(model, config, str(source))
        return None
    generator = torch.Generator(device=data.device).manual_seed(config.seed)
    rotation_model, results = pretrain(config, data, emit, generator, on_collapse)
    model.backbone.load_state_dict(rotation_model.backbone.state_dict())
    return rotation_model, results
