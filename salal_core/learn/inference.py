"""Inference over device-resident images: the pool pass scoring uses, class probabilities,
and evaluation. Every batch has one shape (the last is padded) and nothing is read back to the
host per batch."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.nn import functional as F

from salal_core.data import DeviceData, rotation_batch
from salal_core.distributed import all_sum
from salal_core.learn.model import Net
from salal_core.learn.train import prepare
from salal_core.runtime import autocast, mark_step


def fixed_batches(images: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, int]]:
    """(batch, real rows) in one fixed shape: the last batch is padded with zero images.

    A ragged tail would make cuDNN autotune again and a compiled model recompile, once per
    evaluation; padding costs a fraction of one batch.
    """
    n = images.shape[0]
    batch = min(batch_size, max(n, 1))
    # No images (a rank holding none of them) still makes one batch, all padding: the outputs
    # then have their real shapes, with no rows.
    for start in range(0, max(n, 1), batch):
        chunk = images[start : start + batch]
        real = chunk.shape[0]
        if real < batch:
            chunk = torch.cat([chunk, chunk.new_zeros((batch - real, *chunk.shape[1:]))])
        yield chunk, real


@torch.inference_mode()
def pool_pass(
    model: Net, images: torch.Tensor, data: DeviceData, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over images (N, C, H, W) uint8: class probabilities (K, N, classes), the
    head's input features (N, 8w) and the distance embedding (N, 12w), float32 on the device."""
    model.eval()
    probs, features, embeddings = [], [], []
    for chunk, real in fixed_batches(images, batch_size):
        mark_step()
        with autocast(data.device):
            logits, feats, embedding = model.score(prepare(chunk, data))
        probs.append(logits.float().softmax(-1)[:real])
        # Copies, always: with CUDA graphs (--compile reduce-overhead) the outputs live in
        # buffers the next batch overwrites, and .float() does not copy what is float32.
        features.append(feats[:real].to(torch.float32, copy=True))
        embeddings.append(embedding[:real].to(torch.float32, copy=True))
    # (N, K, C) -> (K, N, C)
    return torch.cat(probs).permute(1, 0, 2), torch.cat(features), torch.cat(embeddings)


@torch.inference_mode()
def predict(model: Net, images: torch.Tensor, data: DeviceData, batch_size: int) -> torch.Tensor:
    """Class probabilities of every image: (N, C, H, W) uint8 -> (K, N, classes) float32."""
    model.eval()
    out = []
    for chunk, real in fixed_batches(images, batch_size):
        mark_step()
        with autocast(data.device):
            logits = model(prepare(chunk, data))
        out.append(logits.float().softmax(-1)[:real])
    return torch.cat(out).permute(1, 0, 2)  # (N, K, C) -> (K, N, C)


@torch.inference_mode()
def evaluate(
    model: Net,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    data: DeviceData,
    batch_size: int,
) -> tuple[float, float]:
    """(loss, accuracy) on held-out images (this rank's share of them: the sums are added up
    over every rank); `labels` None scores the rotation task instead."""
    model.eval()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device)
    total = 0
    start = 0
    for chunk, real in fixed_batches(images, batch_size):
        x = prepare(chunk, data)
        real_rows = torch.arange(x.shape[0], device=x.device) < real
        if labels is None:
            x, y = rotation_batch(x)
            real_rows = real_rows.repeat(4)  # rotation_batch stacks the four turns
        else:
            y = labels[start : start + real]
            y = torch.cat([y, y.new_zeros(x.shape[0] - real)])
        start += real
        mark_step()
        with autocast(data.device):
            logits = model(x)
        p = logits.float().softmax(-1).mean(1)  # committee mean, (B, C)
        nll = F.nll_loss(p.clamp_min(1e-12).log(), y, reduction="none")
        loss_sum += (nll * real_rows).sum()
        correct += ((p.argmax(-1) == y) & real_rows).sum()
        total += real * (4 if labels is None else 1)  # counted on the host: no sync per batch
    counted = torch.tensor(float(total), device=data.device)
    loss, right, count = all_sum(torch.stack([loss_sum, correct.float(), counted])).tolist()
    if count == 0:
        return float("nan"), float("nan")
    return loss / count, right / count
