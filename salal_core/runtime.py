"""Device choice and numeric settings: bf16 autocast and channels_last on CUDA, fp32 on the CPU."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from .errors import SalalError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SalalError("--device cuda was asked for but CUDA is not available; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise SalalError(f"unknown device {name!r}; use auto, cuda or cpu")
    return torch.device(name)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); nothing on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last lets cuDNN use its NHWC tensor-core kernels; the CPU gains nothing."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure(device: torch.device) -> None:
    # Denormal floats (tiny BatchNorm statistics late in training, say) can slow CPU kernels
    # a hundredfold; flushing them to zero costs no accuracy.
    torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes make autotuning pay once
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@contextlib.contextmanager
def cuda_oom_hint() -> Iterator[None]:
    """Turn a CUDA out-of-memory error into a line that says what to change."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise SalalError(
            "the GPU ran out of memory; lower the batch size (--batch-size) or use a smaller "
            "--width, or free the GPU from other processes"
        ) from None
