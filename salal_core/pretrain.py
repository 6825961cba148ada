"""Rotation pretraining: learn features with no labels by predicting the turn of each image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import read_payload_file
from .config import RunConfig, to_dict
from .data import DeviceData
from .distributed import sync_batchnorm
from .errors import SalalError
from .events import Emit, Notice, PhaseChanged
from .inference import evaluate
from .model import Net
from .runtime import compile_model, memory_format
from .train import CollapseRule, fit

EVAL_LIMIT_WITHOUT_TEST = 2000


def build_model(config: RunConfig, classes: int, device: torch.device, members: int = 1) -> Net:
    model = Net(config.model.width, classes, members).to(device)
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
    model = build_model(config, 4, data.device)
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


def pretrain_payload(model: Net, config: RunConfig, results: dict[str, float]) -> dict[str, Any]:
    """A checkpoint is one dict of state dicts and plain values, loadable with weights_only."""
    return {
        "kind": "pretrain",
        "model": model.state_dict(),
        "config": to_dict(config),
        "width": config.model.width,
        **results,
    }


def read_payload(path: Path) -> dict[str, Any]:
    """A checkpoint file given on the command line (--pretrained), or one line saying why not."""
    if not path.exists():
        raise SalalError(f"{path} does not exist; pass a pretrain.pt from an earlier run")
    try:
        payload: dict[str, Any] = read_payload_file(path)
    except Exception as exc:  # torn file, not a checkpoint, refused pickle
        raise SalalError(
            f"{path} is not a readable checkpoint ({exc.__class__.__name__})"
        ) from None
    return payload


def load_pretrained(payload: dict[str, Any], config: RunConfig, model: Net, source: str) -> None:
    """Load a rotation-pretrained backbone into `model`, refusing one of another shape."""
    if payload.get("kind") != "pretrain" or "model" not in payload:
        raise SalalError(f"{source} is not a salal pretraining checkpoint")
    if payload.get("width") != config.model.width:
        raise SalalError(
            f"{source} was trained with --width {payload.get('width')} but this run uses "
            f"{config.model.width}; pass the matching --width or --preset"
        )
    try:
        model.load_backbone(payload["model"])
    except RuntimeError as exc:
        raise SalalError(f"{source} does not fit this model ({str(exc).splitlines()[0]})") from None


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
        load_pretrained(read_payload(source), config, model, str(source))
        return None
    generator = torch.Generator(device=data.device).manual_seed(config.seed)
    rotation_model, results = pretrain(config, data, emit, generator, on_collapse)
    model.backbone.load_state_dict(rotation_model.backbone.state_dict())
    return rotation_model, results
