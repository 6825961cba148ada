"""The one training path, used by pretraining and by every fine-tuning round.

Read top to bottom: optimizer and schedule, one epoch over an index tensor, then `fit`, the
phase itself (what watches it, the time estimate and the collapse rule, is `watch.py`). Data
never leaves the device; the host synchronises once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from salal_core.config import OptimConfig
from salal_core.data import DeviceData, augment_batch, normalize, rotation_batch
from salal_core.distributed import all_sum, count, for_training, same_buffers
from salal_core.events import Emit, EpochEnded, Notice, PhaseStarted, TrainingPhase
from salal_core.learn.batchnorm import recalibrate
from salal_core.learn.model import Net
from salal_core.learn.watch import (
    CollapseRule,
    CollapseWatch,
    EpochStats,
    StepReporter,
    refuse_divergence,
)
from salal_core.runtime import autocast, fused_optimizer, mark_step, memory_format


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm and biases: decaying them only fights the normalisation.
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    fused = fused_optimizer(next(model.parameters()).device)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, fused=fused)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=fused)


def make_schedule(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `cfg.warmup` of the steps, then cosine or linear decay to zero."""
    warm = int(cfg.warmup * total_steps)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        t = min(t, 1.0)
        return 0.5 * (1 + math.cos(math.pi * t)) if cfg.schedule == "cosine" else 1.0 - t

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def steps_per_epoch(n: int, batch_size: int, epochs: int = 1, min_steps: int = 0) -> int:
    """Full batches only (fixed shapes, no recompiles); a set smaller than a batch is one batch.

    A phase gets at least `min_steps` optimizer steps whatever the set's size: 300 images make
    3 batches of 128, and 8 epochs of those (24 steps) teach a network nothing, so an "epoch"
    of a small set goes round its images as often as the phase's minimum asks.
    """
    return max(1, n // batch_size, math.ceil(min_steps / max(1, epochs)))


def prepare(images_uint8: torch.Tensor, data: DeviceData) -> torch.Tensor:
    return normalize(images_uint8, data.mean, data.std).contiguous(
        memory_format=memory_format(data.device)
    )


def draw(rows: torch.Tensor, needed: int, generator: torch.Generator | None) -> torch.Tensor:
    """`needed` of `rows` in a fresh random order, wrapping round with another order when a
    rank holds fewer than its share of the epoch's steps: every rank steps the same times."""
    n = len(rows)
    orders = [rows[torch.randperm(n, device=rows.device, generator=generator)]]
    while len(orders) * n < needed:
        orders.append(rows[torch.randperm(n, device=rows.device, generator=generator)])
    return torch.cat(orders)[:needed] if len(orders) > 1 else orders[0]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    data: DeviceData,
    rows: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    steps: int,
    batch_size: int,
    loss_scale: float = 1.0,
    label_smoothing: float = 0.0,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> EpochStats:
    """`steps` batches of `batch_size` drawn from `rows` (of this rank's shard, on the device).

    `targets` None means the rotation pretext task: each batch becomes its four quarter turns.
    Otherwise `targets[r]` is the class of shard row r. With K heads, each head sees its own
    bootstrap resample (Poisson(1) weights), which is what makes the committee disagree.
    `model` is what `for_training` gives: under torchrun it averages gradients over the ranks.
    A rank holding none of `rows` still steps (DDP needs every rank in every backward) on
    images of its shard with `loss_scale` 0, so that it adds nothing.
    """
    model.train()
    device = data.device
    start = time.perf_counter()
    needed = steps * batch_size
    own = len(rows) > 0
    if own:
        order = draw(rows, needed, generator)
    else:
        order = torch.randint(0, data.train_images.shape[0], (needed,), device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    for step in range(steps):
        idx = order[step * batch_size : (step + 1) * batch_size]
        x = augment_batch(prepare(data.train_images[idx], data), generator)
        if targets is None:
            x, y = rotation_batch(x)  # (B, 3, H, W) -> (4B, 3, H, W), labels 0..3
        else:
            y = targets[idx] if own else torch.zeros_like(idx)
        # One memory layout for every batch: the gather in the crop leaves NHWC strides, and
        # mixing layouts makes oneDNN on the CPU pick (and JIT) other kernels batch by batch.
        x = x.contiguous(memory_format=memory_format(device))
        mark_step()
        with autocast(device):
            logits = model(x)  # (B, K, C)
        logits = logits.float()
        b, k, c = logits.shape
        per_item = F.cross_entropy(
            logits.reshape(b * k, c),
            y.repeat_interleave(k),
            label_smoothing=label_smoothing,
            reduction="none",
        ).view(b, k)
        if k > 1:
            weights = torch.poisson(torch.ones(b, k, device=device), generator=generator)
            loss = (per_item * weights).sum() / weights.sum().clamp_min(1.0)
        else:
            loss = per_item.mean()
        optimizer.zero_grad(set_to_none=True)
        (loss * loss_scale).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        if own:
            loss_sum += loss.detach() * b
            correct += (logits.softmax(-1).mean(1).argmax(-1) == y).sum()
        if on_step is not None:
            on_step(step + 1, steps)
    same_buffers(model)
    seen = torch.tensor(float(steps * b if own else 0), device=device)
    # The epoch's one sync: every rank reads the same totals, so all judge the epoch alike.
    totals = all_sum(torch.stack([loss_sum, correct.float(), seen])).tolist()
    total = max(totals[2], 1.0)
    return EpochStats(
        totals[0] / total, totals[1] / total, int(totals[2]), time.perf_counter() - start
    )


def restart_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """A fresh warm-up and decay for this phase; an optimizer carried over keeps its momentum."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = lr


def shard_loss_scale(data: DeviceData, rows: torch.Tensor) -> float:
    """DDP averages gradients over every rank: a rank holding none of the images adds zeros,
    so the ranks that hold some scale their loss up to make the mean theirs."""
    holders = count(len(rows) > 0)  # a collective: every rank calls it
    return data.shard.size / holders if len(rows) else 0.0


def fit(
    model: Net,
    data: DeviceData,
    indices: torch.Tensor,
    targets: torch.Tensor | None,
    cfg: OptimConfig,
    epochs: int,
    *,
    phase: TrainingPhase,
    round_: int,
    evaluate_fn: Callable[[], tuple[float, float]],
    emit: Emit,
    generator: torch.Generator | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    on_collapse: CollapseRule = "stop",
) -> torch.optim.Optimizer:
    """Train for `epochs` with a fresh warm-up-and-decay schedule, emitting one event per epoch.
    `indices` are global pool positions and `targets` (if any) has one class per position;
    without targets the task is the rotation.

    Passing the previous `optimizer` keeps its momentum across fine-tuning rounds: the model is
    fine-tuned continuously, as the write-up does, with the rate restarted each round.
    """
    optimizer = optimizer or make_optimizer(model, cfg)
    restart_rate(optimizer, cfg.lr)
    # The preset's batch is the global one: each of the ranks takes its share of every step,
    # so the schedule, the step count and the learning rate are those of one process.
    batch = min(cfg.batch_size, len(indices))
    steps = steps_per_epoch(len(indices), batch, epochs, cfg.min_steps)
    rows = data.local(indices)
    local_targets = None if targets is None else data.mine(targets)
    loss_scale = shard_loss_scale(data, rows)
    network = for_training(model)
    scheduler = make_schedule(optimizer, cfg, epochs * steps)
    emit(PhaseStarted(phase, round_, epochs, steps))
    progress = StepReporter(phase, epochs, steps, emit)
    watch = CollapseWatch(phase, model.head.classes, cfg, epochs, steps, data.device, on_collapse)
    for epoch in range(1, epochs + 1):
        stats = train_epoch(
            network,
            optimizer,
            scheduler,
            data,
            rows,
            local_targets,
            steps=steps,
            batch_size=max(1, batch // data.shard.size),
            loss_scale=loss_scale,
            label_smoothing=cfg.label_smoothing,
            generator=generator,
            on_step=progress.in_epoch(epoch),
        )
        # Statistics that fit this epoch's weights, whatever the phase's length, before the
        # network is judged (and, after the last epoch, before it is scored or saved).
        recalibrate(model, data, rows, rotate=targets is None)
        test_loss, test_acc = evaluate_fn()
        emit(
            EpochEnded(
                phase,
                round_,
                epoch,
                epochs,
                stats.loss,
                stats.accuracy,
                test_loss,
                test_acc,
                stats.images_per_second,
                stats.seconds,
            )
        )
        if said := watch.judge(epoch, stats):
            emit(Notice(said))
        refuse_divergence(stats, phase, cfg, data.device)
    return optimizer
