"""The backbone's features of every image, computed once: one pass over the train and test
images at the backbone's own input size (images.py), cached on disk by (images, backbone,
weights digest, input size), so a second start loads them in a moment instead of running the
network again. A fine-tuned copy of the network (learn/tune.py) embeds through the same pass,
uncached: its features change with every round's labels.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from salal_core.backbones.catalog import BackboneSpec
from salal_core.backbones.images import BackboneImages
from salal_core.backbones.networks import build_backbone
from salal_core.backbones.weights import Weights
from salal_core.data.augment import normalize
from salal_core.data.identity import items_digest
from salal_core.data.sources import ImageSet
from salal_core.events import EmbeddingProgress, Emit
from salal_core.files import atomic_write
from salal_core.runtime import autocast, memory_format

CACHE_FORMAT = 1
EMBED_BATCH = {"cpu": 32, "cuda": 256}  # images a forward pass at 224 px
REPORT_EVERY = 2.0  # seconds between progress events: the bar moves, the sinks are not flooded


@dataclass(frozen=True)
class Embeddings:
    """A backbone's pooled features of the train and test images, in the loaded order."""

    backbone: str
    weights_digest: str
    train: torch.Tensor  # (N, D) float32
    test: torch.Tensor  # (M, D) float32
    from_cache: bool
    seconds: float


def embed_batch(device: torch.device) -> int:
    """Images a forward pass on `device`: a GPU is fed many at once, a CPU gains nothing."""
    return EMBED_BATCH.get(device.type, 32)


def cache_path(cache_dir: Path, images: ImageSet, weights: Weights, from_files: bool) -> Path:
    """Where these images' features under these weights are kept."""
    spec = weights.spec
    key = "\n".join(
        [
            str(CACHE_FORMAT),
            spec.name,
            weights.digest,
            str(spec.input_size),
            "files" if from_files else f"decoded-{images.train.images.shape[1]}",
            items_digest(images.train.digests),
            items_digest(images.test.digests),
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir / "embeddings" / f"{spec.name}-{digest}.npz"


def embed_images(
    images: ImageSet,
    weights: Weights,
    device: torch.device,
    cache_dir: Path,
    emit: Emit,
    batch_size: int = 32,
) -> Embeddings:
    """The cached features, or one pass of the network over every image (reported as
    EmbeddingProgress events), saved for the next start."""
    started = time.perf_counter()
    pixels = BackboneImages(images, weights.spec)
    path = cache_path(cache_dir, images, weights, pixels.from_files)
    found = _load(path)
    if found is not None:
        train, test = found
        seconds = time.perf_counter() - started
        return Embeddings(weights.spec.name, weights.digest, train, test, True, seconds)
    train, test = embed_with(build_backbone(weights), pixels, device, emit, batch_size)
    _save(path, train, test)
    seconds = time.perf_counter() - started
    return Embeddings(weights.spec.name, weights.digest, train, test, False, seconds)


def embed_with(
    net: nn.Module,
    pixels: BackboneImages,
    device: torch.device,
    emit: Emit,
    batch_size: int = 32,
    name: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) features of every image by `net` (in eval mode), reported as
    EmbeddingProgress events under `name` (default: the backbone's)."""
    net = net.to(device).to(memory_format=memory_format(device)).eval()
    total = len(pixels.images.train) + len(pixels.images.test)
    progress = _Progress(name or pixels.spec.name, total, emit)
    train = _run(net, pixels.batches("train", batch_size), pixels.spec, device, progress.advance)
    test = _run(net, pixels.batches("test", batch_size), pixels.spec, device, progress.advance)
    return train, test


def embed_pixels(
    net: nn.Module, batches: Iterator[torch.Tensor], spec: BackboneSpec, device: torch.device
) -> torch.Tensor:
    """(N, D) features by `net` of (B, 3, S, S) uint8 batches already at `spec`'s size."""
    return _run(net.eval(), batches, spec, device, lambda count: None)


class _Progress:
    def __init__(self, backbone: str, total: int, emit: Emit) -> None:
        self.backbone, self.total, self.emit = backbone, total, emit
        self.done, self.started, self.last = 0, time.perf_counter(), 0.0
        emit(EmbeddingProgress(backbone, 0, total, 0.0))

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= REPORT_EVERY or self.done == self.total:
            self.last = now
            self.emit(EmbeddingProgress(self.backbone, self.done, self.total, now - self.started))


@torch.inference_mode()
def _run(
    net: nn.Module,
    batches: Iterator[torch.Tensor],
    spec: BackboneSpec,
    device: torch.device,
    advance: Callable[[int], None],
) -> torch.Tensor:
    out = []
    for batch in batches:
        x = network_input(batch, spec, device)
        with autocast(device):
            features = net(x)
        out.append(features.float().cpu())
        advance(len(batch))
    if not out:
        return torch.zeros(0, spec.dim)
    return torch.cat(out).clone()  # out of inference mode: read by code that records gradients


def network_input(batch: torch.Tensor, spec: BackboneSpec, device: torch.device) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> the float input the network was trained on, on `device`."""
    mean = torch.tensor(spec.mean, device=device)
    std = torch.tensor(spec.std, device=device)
    x = normalize(batch.to(device), mean, std)
    return x.contiguous(memory_format=memory_format(device))


def _save(path: Path, train: torch.Tensor, test: torch.Tensor) -> None:
    """Half precision on disk (a linear head does not feel the difference), written whole or
    not at all; a cache that cannot be written only costs the next start another pass."""
    buffer = io.BytesIO()
    np.savez(buffer, train=train.half().numpy(), test=test.half().numpy())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(buffer.getbuffer()))
    except OSError:
        pass


def _load(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            return (
                torch.from_numpy(saved["train"].astype(np.float32)),
                torch.from_numpy(saved["test"].astype(np.float32)),
            )
    except (OSError, ValueError, KeyError):
        return None
