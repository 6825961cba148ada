"""The phases `salal-core bench` times: the engine's own training step and pool scoring, and
the same network trained the way the usual PyTorch tutorial writes it, for the ratio.

Each is timed after a warm-up that pays for cuDNN autotuning and compiling, with the device
synchronised before every clock reading.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from salal_core.cli.commands.bench_figures import Scoring, Throughput, TutorialThroughput
from salal_core.config import RunConfig
from salal_core.data import DeviceData
from salal_core.learn.inference import pool_pass
from salal_core.learn.model import Net
from salal_core.learn.pretrain import build_model
from salal_core.learn.train import make_optimizer, make_schedule, train_epoch
from salal_core.selection.acquire import get as get_acquisition
from salal_core.selection.pool import Pool

POOL = 40_000  # the pool size the scoring figure is quoted for (CIFAR-10 after 10k labels)
WARMUP_STEPS = 3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_host_syncs(device: torch.device, fn: Callable[[], Any]) -> int | None:
    """How often `fn` makes the host wait for the GPU, by torch's sync debug mode (which sees
    `.item()`, `.cpu()`, `nonzero` and the like, though not an explicit synchronize)."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing CUDA operation" in str(w.message) for w in caught)


def train_throughput(config: RunConfig, data: DeviceData, rotation: bool, steps: int) -> Throughput:
    """Network inputs per second of the engine's own training step, rotation or classes (in
    rotation, each of an image's four turns is an input, as in the FLOP count per image)."""
    cfg = config.pretrain.optim if rotation else config.active.optim
    model = build_model(config, 4 if rotation else data.num_classes, data.device, rotation=rotation)
    batch = min(cfg.batch_size, data.num_train)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_schedule(optimizer, cfg, (WARMUP_STEPS + steps) * 2)
    targets = None if rotation else data.train_labels.clamp_min(0)
    generator = torch.Generator(device=data.device).manual_seed(0)

    def run(n_steps: int) -> float:
        indices = torch.randperm(data.num_train, device=data.device, generator=generator)
        indices = indices[: min(data.num_train, n_steps * batch)]
        stats = train_epoch(
            model,
            optimizer,
            scheduler,
            data,
            indices,
            targets,
            steps=len(indices) // batch,
            batch_size=batch,
            generator=generator,
        )
        return stats.images / stats.seconds

    start = time.perf_counter()
    run(WARMUP_STEPS)
    sync(data.device)
    warmup = time.perf_counter() - start  # autotuning, and compiling when asked
    return Throughput(
        images_per_second=run(steps),
        batch_size=batch,
        warmup_seconds=warmup,
        host_syncs_per_epoch=count_host_syncs(data.device, lambda: run(WARMUP_STEPS)),
    )


def scoring_seconds(config: RunConfig, data: DeviceData) -> Scoring:
    """Score a pool of (up to) 40,000 images and pick the query, as a round does: one pass
    over the pool (and, for strategies that cluster or measure distances, over the labeled rest
    of the data), then the strategy's selection."""
    strategy = get_acquisition(config.active.acquisition)
    members = config.active.committee if strategy.committee else 1
    model = build_model(config, data.num_classes, data.device, members)
    size = min(POOL, data.num_train)
    pool, labeled = data.train_images[:size], data.train_images[size:]
    priority = torch.randperm(size, device=data.device)
    k = min(config.query_count(data.num_train), size)
    generator = torch.Generator(device=data.device).manual_seed(0)

    def score() -> tuple[float, float]:
        """(pool pass seconds, selection seconds)."""
        sync(data.device)
        start = time.perf_counter()
        probs, features, embeddings = pool_pass(model, pool, data, config.eval_batch_size)
        seen = embeddings[:0]
        if strategy.sees_labeled and labeled.shape[0]:
            seen = pool_pass(model, labeled, data, config.eval_batch_size)[2]
        sync(data.device)
        passed = time.perf_counter()
        chosen, _ = strategy.select(Pool(probs, features, embeddings, seen, priority), k, generator)
        chosen.cpu()  # the query leaves the device: that is the end of scoring
        return passed - start, time.perf_counter() - passed

    warmup = sum(score())  # autotuning, allocator, compiling when asked
    best = min((score() for _ in range(3)), key=sum)
    return Scoring(
        seconds=sum(best),
        pool_pass_seconds=best[0],
        select_seconds=best[1],
        pool=size,
        labeled=int(labeled.shape[0]) if strategy.sees_labeled else 0,
        acquisition=strategy.name,
        warmup_seconds=warmup,
        host_syncs=count_host_syncs(data.device, score),
    )


class TutorialCifar(Dataset[tuple[torch.Tensor, int]]):
    """CIFAR-10 as torchvision.datasets.CIFAR10 serves it: one PIL image per item."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        transform: Callable[[Image.Image], torch.Tensor],
    ) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def naive_throughput(
    config: RunConfig, data: DeviceData, images: np.ndarray, labels: np.ndarray, steps: int
) -> TutorialThroughput:
    """The same network trained as the tutorial does: DataLoader workers decoding and
    augmenting PIL images, fp32, a host sync per step for the running loss."""
    import torchvision.transforms as T

    device, cfg = data.device, config.active.optim
    workers = min(8, os.cpu_count() or 1)  # the tutorial's habit, capped by this machine
    transform = T.Compose(
        [
            T.RandomCrop(images.shape[1], padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(data.mean.tolist(), data.std.tolist()),
        ]
    )
    loader = DataLoader(
        TutorialCifar(images, np.maximum(labels, 0), transform),
        batch_size=min(cfg.batch_size, len(images)),
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=True,
    )
    model = Net(config.model.width, data.num_classes).to(device)  # NCHW, fp32: as written there
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    seen, start, step, running_loss = 0, 0.0, 0, 0.0
    while step < WARMUP_STEPS + steps:
        for x, y in loader:
            if step == WARMUP_STEPS:
                sync(device)
                start, seen = time.perf_counter(), 0
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x)[:, 0], y)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            running_loss += loss.item()
            seen += len(y)
            step += 1
            if step == WARMUP_STEPS + steps:
                break
    sync(device)
    return TutorialThroughput(seen / (time.perf_counter() - start), workers)
