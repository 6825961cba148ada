"""The backbone's features of every image, computed once: one pass over the train and test
images at the backbone's own input size, cached on disk by (images, backbone, weights digest,
input size), so a second start loads them in a moment instead of running the network again.

Images are read from their own files where the source has them (a photo folder, or an archive
of images), decoded at the backbone's size, so a large photo is not first shrunk to the run's
small training copy; CIFAR's pickled rows have no files and are resized from that copy.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from salal_core.backbones.catalog import BackboneSpec
from salal_core.backbones.networks import build_backbone
from salal_core.backbones.weights import Weights
from salal_core.data.decode import Undecodable, decode_image, open_rgb
from salal_core.data.identity import items_digest
from salal_core.data.sources import ImageSet, Split
from salal_core.data.walk import walk_members
from salal_core.errors import SalalError
from salal_core.events import EmbeddingProgress, Emit
from salal_core.files import atomic_write
from salal_core.runtime import autocast, memory_format

CACHE_FORMAT = 1
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
    readers = _file_readers(images)
    path = cache_path(cache_dir, images, weights, readers is not None)
    found = _load(path)
    if found is not None:
        train, test = found
        seconds = time.perf_counter() - started
        return Embeddings(weights.spec.name, weights.digest, train, test, True, seconds)
    net = build_backbone(weights).to(device).to(memory_format=memory_format(device))
    total = len(images.train) + len(images.test)
    progress = _Progress(weights.spec.name, total, emit)
    parts = []
    for split in (images.train, images.test):
        batches = _batches(split, readers, weights.spec, batch_size)
        parts.append(_run(net, batches, weights.spec, device, progress))
    train, test = parts
    _save(path, train, test)
    seconds = time.perf_counter() - started
    return Embeddings(weights.spec.name, weights.digest, train, test, False, seconds)


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


Reader = Callable[[], bytes]


def _file_readers(images: ImageSet) -> dict[str, Reader] | None:
    """Each image's own bytes by its id, where every image of both splits has a file (a folder
    or an archive of images) and the files hold more pixels than the run's decoded copy; None
    for CIFAR's pickled rows, and for files no larger than that copy (CIFAR's own 32x32 JPEGs):
    resizing the copy gives the same pixels without reading every file again."""
    ids = [*images.train.ids, *images.test.ids]
    source = Path(images.source)
    if (
        not ids
        or not source.exists()
        or _first_side(source, ids[0]) <= images.train.images.shape[1]
    ):
        return None
    try:
        members = dict(walk_members(source).members)
    except SalalError:
        return None
    return members if all(i in members for i in ids) else None


def _first_side(source: Path, name: str) -> int:
    """The longer side of the source's image `name` (0 where it cannot be read), without
    reading the rest of an archive's files."""
    try:
        if source.is_dir():
            return max(open_rgb(source / name).size)
        with tarfile.open(source, "r:*") as tar:
            member = tar.extractfile(name)
            return max(open_rgb(member.read()).size) if member is not None else 0
    except (KeyError, OSError, tarfile.TarError, Undecodable):
        return 0


def _batches(
    split: Split,
    readers: dict[str, Reader] | None,
    spec: BackboneSpec,
    batch_size: int,
) -> Iterator[torch.Tensor]:
    """(B, 3, S, S) uint8 at the backbone's size: decoded from the files, or resized from the
    run's decoded copy."""
    size = spec.input_size
    for start in range(0, len(split), batch_size):
        stop = min(start + batch_size, len(split))
        if readers is not None:
            decoded = np.stack([_decode(readers[n](), size) for n in split.ids[start:stop]])
            yield torch.from_numpy(decoded).permute(0, 3, 1, 2)
        else:
            small = torch.from_numpy(split.images[start:stop]).permute(0, 3, 1, 2).float()
            mode = "bicubic" if spec.interpolation == "bicubic" else "bilinear"
            big = F.interpolate(small, size=(size, size), mode=mode, antialias=True)
            yield big.round().clamp(0, 255).to(torch.uint8)


def _decode(data: bytes, size: int) -> np.ndarray:
    """The file as the loader decoded it, at the backbone's size; a file that decoded then and
    does not now was changed on disk underneath the run."""
    try:
        return decode_image(data, size)
    except Undecodable as exc:
        raise SalalError(
            f"an image changed on disk while it was embedded ({exc}); start again"
        ) from None


@torch.inference_mode()
def _run(
    net: nn.Module,
    batches: Iterator[torch.Tensor],
    spec: BackboneSpec,
    device: torch.device,
    progress: _Progress,
) -> torch.Tensor:
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    out = []
    for batch in batches:
        x = (batch.to(device).float() / 255.0 - mean) / std
        x = x.contiguous(memory_format=memory_format(device))
        with autocast(device):
            features = net(x)
        out.append(features.float().cpu())
        progress.advance(len(batch))
    if not out:
        return torch.zeros(0, spec.dim)
    return torch.cat(out).clone()  # out of inference mode: read by code that records gradients


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
