"""The one training path, used by pretraining and by every fine-tuning round.

Read top to bottom: optimizer and schedule, one epoch over an index tensor, evaluation, and
prediction over the pool. Data never leaves the device; the host synchronises once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .batchnorm import recalibrate
from .config import OptimConfig
from .data import DeviceData, augment_batch, normalize, rotation_batch
from .distributed import all_sum, count, for_training, same_buffers
from .errors import Collapsed, Diverged
from .events import Emit, EpochEnded, Notice, PhaseStarted, StepProgress, TrainingPhase
from .model import Net
from .runtime import autocast, fused_optimizer, mark_step, memory_format


@dataclass(frozen=True)
class EpochStats:
    loss: float
    accuracy: float
    images: int  # images the network saw, rotations counted
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


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


LONG_PHASE = 3600.0  # seconds: a phase expected to run longer is announced, with the remedy
ESTIMATE_AFTER = 5  # steps timed before the estimate


def long_phase(phase: TrainingPhase, seconds: float) -> str:
    """What to tell a person before an hour-long wait: how long, and what shortens it."""
    hours, minutes = divmod(round(seconds / 60), 60)
    if phase == "pretrain":
        what, shorter = (
            "rotation pretraining",
            "--pretrain-epochs N, --train-limit N or --preset cpu",
        )
    else:
        what, shorter = "this round's training", "--epochs-per-round N or a smaller --query-size"
    return (
        f"{what} will take about {hours} h {minutes:02d} min at this speed; {shorter} shortens it"
    )


COLLAPSED_EPOCHS = 2  # epochs in a row at a uniform guess, after the warm-up, that stop a run
# Optimizer steps a phase takes before it can be judged collapsed: a handful of steps on a few
# images sits near ln(classes) because it has barely moved, not because it fell into a minimum.
COLLAPSE_MIN_STEPS = 100
# What a collapse does: headless, the run stops (a script reads why); in a person's session it
# is said on screen and training carries on, so that no label a person gives is stranded.
CollapseRule = Literal["stop", "warn"]


def at_uniform(stats: EpochStats, classes: int) -> bool:
    """A whole epoch at the loss of a uniform guess, ln(classes) (within 2%), at chance
    accuracy: every image gets the same guess."""
    near = abs(stats.loss - math.log(classes)) < 0.02 * math.log(classes)
    return near and stats.accuracy < 1 / classes + 0.02


def other_recipe(device: torch.device) -> str:
    """The preset to name in advice: one this machine can run."""
    return " or use --preset fast" if device.type == "cuda" else " or use --preset cpu"


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
    `indices` are global pool positions and `targets` (if any) has one class per position.

    Passing the previous `optimizer` keeps its momentum across fine-tuning rounds: the model is
    fine-tuned continuously, as the write-up does, with the rate restarted each round.
    """
    optimizer = optimizer or make_optimizer(model, cfg)
    classes = model.head.classes
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = cfg.lr
    # The preset's batch is the global one: each of the ranks takes its share of every step,
    # so the schedule, the step count and the learning rate are those of one process.
    batch = min(cfg.batch_size, len(indices))
    steps = steps_per_epoch(len(indices), batch, epochs, cfg.min_steps)
    ranks = data.shard.size
    rows = data.local(indices)
    holders = count(len(rows) > 0)  # ranks holding any of `indices`
    loss_scale = ranks / holders if len(rows) else 0.0
    local_targets = None if targets is None else data.mine(targets)
    network = for_training(model)
    scheduler = make_schedule(optimizer, cfg, epochs * steps)
    emit(PhaseStarted(phase, round_, epochs, steps))
    every = max(1, steps // 20)
    started = time.perf_counter()
    # During the warm-up the rate is still climbing from zero: no network is judged there.
    warm, uniform, warned = cfg.warmup * epochs, 0, False
    for epoch in range(1, epochs + 1):

        def on_step(step: int, total: int, epoch: int = epoch) -> None:
            if epoch == 1 and step == min(ESTIMATE_AFTER, total):
                estimate = (time.perf_counter() - started) / step * total * epochs
                if estimate > LONG_PHASE:
                    emit(Notice(long_phase(phase, estimate)))
            if step % every == 0 or step == total:
                emit(StepProgress(phase, epoch, step, total))

        stats = train_epoch(
            network,
            optimizer,
            scheduler,
            data,
            rows,
            local_targets,
            steps=steps,
            batch_size=max(1, batch // ranks),
            loss_scale=loss_scale,
            label_smoothing=cfg.label_smoothing,
            generator=generator,
            on_step=on_step,
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
        judged = epoch > warm and epoch * steps >= COLLAPSE_MIN_STEPS
        uniform = uniform + 1 if judged and at_uniform(stats, classes) else 0
        if uniform >= COLLAPSED_EPOCHS and not warned:
            # Every image gets the same uniform guess: scoring would rank noise, and more
            # epochs will not leave this flat minimum. Seen with Adam at 0.3 (the write-up's).
            since = epoch - uniform + 1
            said = (
                f"{phase} collapsed: from epoch {since} the loss sits at ln {classes} "
                f"({stats.loss:.3f}) and accuracy at chance ({stats.accuracy:.3f}) with "
                f"{cfg.optimizer} at lr {cfg.lr}; lower it with --lr (a new run, or --resume to "
                f"keep the labels){other_recipe(data.device)}"
            )
            if on_collapse == "stop":
                raise Collapsed(said)
            emit(Notice(f"{said}; labeling carries on"))
            warned = True
        if not math.isfinite(stats.loss):
            # Weights that are NaN score every image alike and predict nothing: stop the run
            # rather than go on asking for labels with them. Every answer is already saved.
            raise Diverged(
                f"{phase} diverged (loss {stats.loss}) with {cfg.optimizer} at lr {cfg.lr}; "
                "lower it with --lr (a new run, or --resume to keep the labels)"
                f"{other_recipe(data.device)}"
            )
    return optimizer
