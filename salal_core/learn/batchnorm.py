"""BatchNorm statistics that fit the weights they normalise.

A short phase (a few hundred images, tens of optimizer steps at a high rate) moves the weights
faster than BatchNorm's running averages (momentum 0.1) follow them: evaluated with those stale
statistics, a network scores far worse than it trains (an evaluation loss of 20 against a
training loss of 2). So before anything is evaluated, scored or embedded, the statistics are
recomputed over the phase's own images without gradients, as the equal-weight mean of batch
statistics (PreciseBN, Wu and Johnson 2021; `torch.optim.swa_utils.update_bn` does the same),
summed over every rank so that the ranks of a torchrun group normalise alike.
"""

from __future__ import annotations

import torch
from torch import nn

from salal_core.data import DeviceData, normalize, rotation_batch
from salal_core.distributed import all_sum
from salal_core.runtime import autocast, memory_format

RECALIBRATE_IMAGES = 1024  # a seeded sample: the statistics settle well before this many
RECALIBRATE_BATCH = 256


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate(
    model: nn.Module,
    data: DeviceData,
    rows: torch.Tensor,
    *,
    rotate: bool,
    limit: int = RECALIBRATE_IMAGES,
) -> None:
    """Recompute every BatchNorm layer's running mean and variance over `rows` of this rank's
    shard (a seeded sample of at most `limit` of them), upright or, with `rotate`, in their four
    quarter turns as the rotation task sees them. Every rank must call it (one collective)."""
    layers = batchnorm_layers(model)
    if not layers:
        return
    sums = [torch.zeros(2, bn.num_features, device=data.device) for bn in layers]
    batches = torch.zeros((), device=data.device)

    def record(index: int):  # type: ignore[no-untyped-def]
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].float()
            # (B, C, H, W) -> per channel: the batch statistics train-mode BatchNorm uses.
            sums[index][0] += x.mean(dim=(0, 2, 3))
            sums[index][1] += x.var(dim=(0, 2, 3))

        return hook

    if len(rows) > limit:
        # Its own seeded stream: recalibrating never moves the training's random stream.
        generator = torch.Generator(device=rows.device).manual_seed(len(rows))
        pick = torch.randperm(len(rows), device=rows.device, generator=generator)[:limit]
        rows = rows[pick]
    handles = [bn.register_forward_pre_hook(record(i)) for i, bn in enumerate(layers)]
    was_training = model.training
    model.train()  # batch statistics, as in training; the running ones are overwritten below
    try:
        # Equal batches: each batch's statistics count alike, as they do in training.
        chunks = max(1, -(-len(rows) // RECALIBRATE_BATCH))
        for chunk in torch.tensor_split(rows, chunks) if len(rows) else ():
            x = normalize(data.train_images[chunk], data.mean, data.std)
            if rotate:
                x, _ = rotation_batch(x)  # (B, 3, H, W) -> (4B, 3, H, W)
            with autocast(data.device):
                model(x.contiguous(memory_format=memory_format(data.device)))
            batches += 1
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    flat = all_sum(torch.cat([*(s.reshape(-1) for s in sums), batches.view(1)]))
    total = flat[-1]
    if total == 0:  # no rank held any image: keep the statistics the model has
        return
    offset = 0
    for bn in layers:
        c = bn.num_features
        mean, var = flat[offset : offset + c], flat[offset + c : offset + 2 * c]
        offset += 2 * c
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(mean / total)
        bn.running_var.copy_(var / total)
