"""The settings a run cannot be made from, refused before anything starts with one line that
says which flag to change."""

from __future__ import annotations

import math

from salal_core.backbones.catalog import AUTO, BACKBONE_CHOICES, ROTNET
from salal_core.config import COMPILE_MODES, FINE_TUNE_CHOICES, HEAD_INPUTS, RunConfig
from salal_core.data.decode import MIN_SIDE
from salal_core.errors import SalalError
from salal_core.selection.acquire import ACQUISITIONS


def validate(config: RunConfig) -> None:
    """Refuse settings that cannot make a run, with a line that says what to change."""
    a = config.active
    if a.acquisition not in ACQUISITIONS:
        raise SalalError(
            f"unknown acquisition {a.acquisition!r}; choose one of: {', '.join(ACQUISITIONS)}"
        )
    if not 0 <= a.initial_fraction <= 1:
        raise SalalError("--initial-fraction must be in [0, 1], e.g. 0.2")
    if not 0 < a.budget <= 1:
        raise SalalError("--budget must be in (0, 1], e.g. 0.5")
    # Equal only when both are 1: every label from the start, nothing to ask (a reference).
    if a.budget < a.initial_fraction or (a.budget == a.initial_fraction < 1):
        raise SalalError(
            f"--budget ({a.budget}) must be above --initial-fraction ({a.initial_fraction})"
        )
    if a.query_size <= 0:
        raise SalalError("--query-size must be above 0 (a count like 32, or a fraction like 0.05)")
    if not 0 <= a.label_noise < 1:
        raise SalalError("--label-noise must be in [0, 1), e.g. 0.05")
    if a.stop_when_flat < 0:
        raise SalalError("--stop-when-flat must be 0 (never) or a number of rounds")
    if a.epochs_per_round < 1:
        raise SalalError("--epochs-per-round must be at least 1")
    if min(a.optim.min_steps, config.pretrain.optim.min_steps) < 0:
        raise SalalError("--pretrain-steps and --round-steps must be 0 (no minimum) or more")
    if a.finetune_from < 0:
        raise SalalError("--finetune-from must be 0 (always fine-tune) or a number of labels")
    if a.cross_validate_from < 0:
        raise SalalError("--cross-validate-from must be 0 (never) or a number of labels")
    if a.cross_validate_below < 0:
        raise SalalError("--cross-validate-below must be 0 (any folder) or a number of images")
    if config.pretrain.limit < 0:
        raise SalalError("the pretraining limit must be 0 (every image) or more")
    if config.pretrain.epochs < 0:
        raise SalalError("--pretrain-epochs must be 0 (no pretraining) or more")
    for lr in (config.pretrain.optim.lr, a.optim.lr):
        if not (math.isfinite(lr) and lr > 0):
            raise SalalError(f"--lr must be a positive number, not {lr}")
    if min(config.data.train_limit, config.data.test_limit) < 0:
        raise SalalError("--train-limit and --test-limit must be 0 (everything) or more")
    if config.seed < 0:
        raise SalalError("--seed must be 0 or more")
    if config.eval_batch_size < 1 or min(a.optim.batch_size, config.pretrain.optim.batch_size) < 1:
        raise SalalError("--batch-size and --eval-batch-size must be at least 1")
    if config.model.width < 1:
        raise SalalError("--width must be at least 1")
    if config.model.head_input not in HEAD_INPUTS:
        raise SalalError(
            f"unknown --head-input {config.model.head_input!r}; choose one of: "
            f"{', '.join(HEAD_INPUTS)}"
        )
    if config.model.backbone not in BACKBONE_CHOICES:
        raise SalalError(
            f"unknown --backbone {config.model.backbone!r}; choose one of: "
            f"{', '.join(BACKBONE_CHOICES)}"
        )
    if config.model.backbone_weights and config.model.backbone in (AUTO, ROTNET):
        raise SalalError(
            "--backbone-weights is a pretrained network's file: name the network with "
            "--backbone, e.g. --backbone efficientnet_lite0"
        )
    if config.model.fine_tune not in FINE_TUNE_CHOICES:
        raise SalalError(
            f"unknown --fine-tune {config.model.fine_tune!r}; choose one of: "
            f"{', '.join(FINE_TUNE_CHOICES)}"
        )
    if config.model.fine_tune in ("check", "always") and config.model.backbone == ROTNET:
        raise SalalError(
            "--fine-tune is for a pretrained --backbone; rotnet's own network is fine-tuned "
            "where cross-validation says so (--cross-validate-from)"
        )
    if config.data.image_size < MIN_SIDE:  # also below the crop's 4-pixel reflection padding
        raise SalalError(f"--image-size must be at least {MIN_SIDE} (CIFAR-10's is 32)")
    if config.speed.compile not in COMPILE_MODES:
        raise SalalError(
            f"unknown --compile mode {config.speed.compile!r}; choose one of: "
            f"{', '.join(COMPILE_MODES)}"
        )
