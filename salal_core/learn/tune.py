"""Fine-tuning a pretrained backbone on a run's labels: one clear training path.

Linear probe, then fine-tuning (Kumar et al., 2022): the classifier starts as the head the
probe learner fit on the frozen features of the same labels, so the first steps do not tear the
pretrained features apart to fit a random head. Then every weight trains at a small rate (Adam
at 1e-4, warmed up, then cosine decay) on random resized crops and mirror images at the
backbone's own input size, the augmentation the network was pretrained with. The network stays
in eval mode: BatchNorm keeps its ImageNet statistics, which a batch of 32 images of a few
classes would replace with noise, and dropout stays off, as the features are read without it.

Whether a round uses the tuned network at all is for cross-validation to say
(learn/tuned_input.py): this module only trains it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from salal_core.backbones.catalog import BackboneSpec
from salal_core.backbones.embed import network_input
from salal_core.config import OptimConfig
from salal_core.data.augment import resized_crop_batch
from salal_core.events import Emit, PhaseStarted, StepProgress
from salal_core.learn.train import make_optimizer, make_schedule
from salal_core.runtime import autocast, memory_format

# What the head's input is called when it is the tuned network's embedding.
TUNED_SUFFIX = " fine-tuned"
RECIPE = OptimConfig(optimizer="adam", lr=1e-4, weight_decay=1e-5, warmup=0.1, batch_size=32)
# Steps of one fine-tuning: this many passes over the labels, within these bounds (a few
# labels still get enough steps to move; thousands do not make a round take minutes).
EPOCHS = 10
MIN_STEPS, MAX_STEPS = 50, 500
REPORT_EVERY = 10  # steps between progress events


def tuned_name(backbone: str) -> str:
    """The head input a fine-tuned copy of `backbone` gives."""
    return backbone + TUNED_SUFFIX


def tune_steps(labels: int, asked: int = 0) -> int:
    """Optimizer steps for fine-tuning on `labels` images: `asked` where it is set (the
    --fine-tune-steps flag), else `EPOCHS` passes within [MIN_STEPS, MAX_STEPS]."""
    if asked > 0:
        return asked
    return min(MAX_STEPS, max(MIN_STEPS, EPOCHS * math.ceil(labels / RECIPE.batch_size)))


def head_layer(weight: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> nn.Linear:
    """A probe's weights (E + 1, C) on standardized features as a layer on the raw features
    the network gives: the same logits for every image."""
    scaled = weight[:-1] / std.unsqueeze(1)  # (E, C)
    layer = nn.Linear(weight.shape[0] - 1, weight.shape[1])
    with torch.no_grad():
        layer.weight.copy_(scaled.T)
        layer.bias.copy_(weight[-1] - mean @ scaled)
    return layer


def fine_tune(
    base: nn.Module,
    head: nn.Linear,
    read: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    spec: BackboneSpec,
    steps: int,
    device: torch.device,
    generator: torch.Generator,
    emit: Emit,
    round_: int,
) -> nn.Module:
    """A copy of `base` (left as it is) trained with `head` for `steps` steps on N labeled
    images of classes `targets`, `read(i)` giving the (B, 3, S, S) uint8 images at indices `i`;
    returned frozen, in eval mode, on `device`."""
    net = copy.deepcopy(base)
    for p in net.parameters():
        p.requires_grad_(True)
    model = nn.Sequential(net, copy.deepcopy(head)).to(device)
    model = model.to(memory_format=memory_format(device)).eval()
    optimizer = make_optimizer(model, RECIPE)
    schedule = make_schedule(optimizer, RECIPE, steps)
    batch = min(RECIPE.batch_size, len(targets))
    # Whole passes over the labels in a seeded order, cut into the steps' batches.
    passes = math.ceil(steps * batch / len(targets))
    order = torch.cat([torch.randperm(len(targets), generator=generator) for _ in range(passes)])
    emit(PhaseStarted("finetune", round_, 1, steps))
    for step in range(steps):
        chosen = order[step * batch : (step + 1) * batch]
        x = resized_crop_batch(network_input(read(chosen), spec, device), generator)
        y = targets[chosen].to(device)
        with autocast(device):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        schedule.step()
        if (step + 1) % REPORT_EVERY == 0 or step + 1 == steps:
            emit(StepProgress("finetune", 1, step + 1, steps))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()
