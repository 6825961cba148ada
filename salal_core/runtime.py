"""Device choice and numeric settings: bf16 autocast and channels_last on CUDA, fp32 on the CPU.

The speed switches are process-wide, like torch's own backend flags: `configure` sets them
once per run (the engine owns its process), and every training and scoring step reads them.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from salal_core.config import RunConfig, SpeedConfig
from salal_core.errors import SalalError

if TYPE_CHECKING:  # only the annotation: learn/ is above this module
    from salal_core.learn.model import Net

# torch.compile's code generator; the tests swap in "aot_eager", which traces the same graphs
# without the minutes of C++ compilation inductor spends on a CPU.
COMPILE_BACKEND = "inductor"
# Each batch shape and each mode (train, eval, inference) is its own graph; a run has about six,
# and past torch's default of 8 it would silently fall back to eager.
RECOMPILE_LIMIT = 32

_speed = SpeedConfig()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SalalError("--device cuda was asked for but CUDA is not available; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise SalalError(f"unknown device {name!r}; use auto, cuda or cpu")
    return torch.device(name)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); nothing on the CPU."""
    if device.type == "cuda" and _speed.bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last lets cuDNN use its NHWC tensor-core kernels; the CPU gains nothing."""
    if device.type == "cuda" and _speed.channels_last:
        return torch.channels_last
    return torch.contiguous_format


def fused_optimizer(device: torch.device) -> bool:
    """One kernel per optimizer step on CUDA instead of a few per parameter group."""
    return device.type == "cuda" and _speed.fused_optimizer


def compile_model(model: Net) -> Net:
    """Compile `model` in place when asked: one whole graph per batch shape, never dynamic.

    In place (`Module.compile`), so state dicts and checkpoints keep their plain key names;
    the scoring pass (`Net.score`, not `forward`) is compiled beside it.
    """
    if _speed.compile == "off":
        return model
    torch._dynamo.config.recompile_limit = RECOMPILE_LIMIT
    mode = None if _speed.compile == "default" or COMPILE_BACKEND != "inductor" else _speed.compile
    model.compile(backend=COMPILE_BACKEND, mode=mode, dynamic=False, fullgraph=True)
    model.score = torch.compile(  # type: ignore[method-assign]
        model.score, backend=COMPILE_BACKEND, mode=mode, dynamic=False, fullgraph=True
    )
    return model


def compile_notice() -> str | None:
    """What to tell a person whose first steps stall while the network compiles; None if off."""
    if _speed.compile == "off":
        return None
    return (
        f"torch.compile ({_speed.compile}) is on: the first steps of each phase compile the "
        "network, a minute or more the first time (cached for later runs)"
    )


def mark_step() -> None:
    """With CUDA graphs, say a new step begins, so the graphs may reuse the last step's outputs."""
    if _speed.compile == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure(device: torch.device, speed: SpeedConfig | None = None) -> None:
    """Set this process's numeric and speed settings for a run on `device`."""
    global _speed
    _speed = speed or SpeedConfig()
    # Denormal floats (tiny BatchNorm statistics late in training, say) can slow CPU kernels
    # a hundredfold; flushing them to zero costs no accuracy.
    torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes make autotuning pay once
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def set_up(config: RunConfig) -> torch.device:
    """This process's device, numeric settings and seeds for a run of `config`: the same on
    rank 0 and on every rank that follows it."""
    device = resolve_device(config.device)
    configure(device, config.speed)
    seed_everything(config.seed)
    return device


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run tiny tensor work (a linear head's hundreds of L-BFGS steps) on one CPU thread: for
    matrices this small, the threads' hand-offs cost more than the arithmetic, and on a busy
    machine they made a head's fit twenty times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def cuda_oom_hint() -> Iterator[None]:
    """Turn a CUDA out-of-memory error into a line that says what to change."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise SalalError(
            "the GPU ran out of memory; lower --batch-size (training) or --eval-batch-size "
            "(scoring), use a smaller --width, or free the GPU from other processes"
        ) from None
