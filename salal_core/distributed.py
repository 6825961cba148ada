"""More than one process: PyTorch's own `torch.distributed`, as `torchrun` launches it.

A process launched by `torchrun` (or `salal-tui --ranks N`) finds RANK, WORLD_SIZE and a
rendezvous in its environment and joins the group; any other process is a world of one, and
every helper here is then the identity. The rest of the engine calls these helpers and never
asks which rank it is, except where rank 0 alone may act: the run directory, the oracle, the
progress bars (run/group.py).

Every rank draws from the same seeded generators. Ranks hold different images (`Shard`), so
the same draws land on different images, and one seed still reproduces the whole group.
"""

from __future__ import annotations

import datetime
import gc
import os
import socket
import weakref
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from salal_core.errors import SalalError

T = TypeVar("T")
DEFAULT_GROUP_TIMEOUT = 1800.0  # seconds: torch's own default for a collective


@dataclass(frozen=True)
class World:
    """This process's place in the group: its rank, how many there are, its device."""

    rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        return Shard(self.rank, self.size)


@dataclass(frozen=True)
class Shard:
    """The pool positions one rank holds: rank, rank + size, rank + 2 size, ... Strided, so
    shards differ in length by one at most and any set of positions splits evenly."""

    rank: int = 0
    size: int = 1

    def mine(self, positions: torch.Tensor) -> torch.Tensor:
        """Which of these global positions this rank holds (a mask, order kept)."""
        return positions % self.size == self.rank

    def local(self, positions: torch.Tensor) -> torch.Tensor:
        """The rows, in this rank's shard, of the given global positions it holds."""
        return positions[self.mine(positions)] // self.size


def check_local_ranks(ranks: int, device: torch.device) -> None:
    """`salal-tui --ranks N`: one process per GPU, so no more ranks than GPUs."""
    if ranks < 1:
        raise SalalError("--ranks must be at least 1")
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and ranks > gpus:
        raise SalalError(
            f"--ranks {ranks} asks for one GPU each, and this machine has {gpus}; use "
            f"--ranks {gpus} or fewer"
        )


def local_group(ranks: int) -> list[dict[str, str]]:
    """What torchrun --standalone would set for each of `ranks` local processes."""
    if ranks == 1:
        return [{}]
    with socket.socket() as probe:  # a free port for rank 0's rendezvous store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return [
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(ranks),
            "LOCAL_WORLD_SIZE": str(ranks),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
        }
        for rank in range(ranks)
    ]


def launched() -> bool:
    """Started by torchrun (or `salal-tui --ranks`): the environment names a group."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_from_env() -> int:
    """This process's rank as torchrun set it, before (or without) joining the group."""
    return int(os.environ.get("RANK", "0"))


def restarted() -> bool:
    """torchrun --max-restarts started this group again after one of its processes died."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def join(device: torch.device, timeout: float | None = None) -> World:
    """Join the group torchrun described in the environment (once per process), or a world
    of one. NCCL between GPUs, gloo between CPUs; each rank takes the GPU of its local rank."""
    if not launched():
        return World(0, 1, device)
    timeout = DEFAULT_GROUP_TIMEOUT if timeout is None else timeout
    if timeout <= 0:
        raise SalalError("--group-timeout must be above 0 seconds, e.g. 600")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        wait = datetime.timedelta(seconds=timeout)
        try:
            store, rank, world = next(dist.rendezvous("env://", timeout=wait))
            # torchrun keeps its store across --max-restarts; the addresses the last attempt's
            # ranks left in it would be read as this attempt's. A prefix per attempt.
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group(
                backend,
                store=dist.PrefixStore(f"salal/attempt-{attempt}", store),
                rank=rank,
                world_size=world,
                timeout=wait,
                device_id=device if device.type == "cuda" else None,
            )
        except (RuntimeError, ValueError) as exc:  # DistStoreError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SalalError(
                f"the process group did not form within {timeout:.0f} s ({first}); start the "
                "same command on every node, check that they reach the rendezvous endpoint "
                "(MASTER_ADDR:MASTER_PORT or --rdzv-endpoint), or raise --group-timeout"
            ) from None
    return World(dist.get_rank(), dist.get_world_size(), device)


def leave(in_step: bool) -> None:
    """Leave the group at the end of a command. `in_step`: every rank got here the same way,
    so they wait for each other first; tearing down while a peer still talks to this rank
    aborts it. Otherwise the peers may be gone, and waiting for them would hang."""
    if dist.is_initialized():
        # DDP's reducer keeps gloo work (and its tensors) alive; freed after the interpreter
        # starts to shut down, they abort the process. Drop them while it is whole.
        _wrapped.clear()
        gc.collect()
        if in_step:
            dist.barrier()
        dist.destroy_process_group()


def size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def shard() -> Shard:
    return Shard(rank(), size())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def count(flag: bool) -> int:
    """How many ranks pass True (on every rank)."""
    value = torch.tensor([int(flag)], device=_collective_device())
    return int(all_sum(value).item())


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum of `values` over every rank (on every rank)."""
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast(value: T | None) -> T:
    """Rank 0's `value`, on every rank (any picklable object; other ranks pass None)."""
    if not dist.is_initialized():
        assert value is not None
        return value
    box: list[Any] = [value]
    # NCCL moves the pickled bytes through the GPU; gloo through the host.
    dist.broadcast_object_list(box, src=0, device=_collective_device())
    result: T = box[0]
    return result


def gather_rows(rows: torch.Tensor, counts: list[int]) -> list[torch.Tensor]:
    """Rank r's `rows` (counts[r] of them, same trailing shape everywhere), on rank 0, in rank
    order; other ranks get an empty list. Shorter ones travel padded and arrive trimmed."""
    if not dist.is_initialized():
        return [rows]
    longest = max(counts)
    padded = rows.new_zeros((longest, *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    if dist.get_rank() != 0:
        dist.gather(padded.contiguous(), None, dst=0)
        return []
    bins = [torch.empty_like(padded) for _ in counts]
    dist.gather(padded.contiguous(), bins, dst=0)
    return [b[:c] for b, c in zip(bins, counts, strict=True)]


def _nccl() -> bool:
    return dist.is_initialized() and dist.get_backend() == "nccl"


def _collective_device() -> torch.device | None:
    """Where a tensor must live for this group's collectives: NCCL moves GPU memory only."""
    return torch.device("cuda", torch.cuda.current_device()) if _nccl() else None


# model -> (its parameters when wrapped, the wrapper): DDP hooks every parameter, so it is
# made once per model, and again only if the model's parameters were replaced (a new head).
_wrapped: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], nn.Module]] = (
    weakref.WeakKeyDictionary()
)


def for_training(model: nn.Module) -> nn.Module:
    """The module a training step calls: `model` itself in a world of one, else a
    DistributedDataParallel around it, which averages the gradients over the ranks during the
    backward pass (and starts every rank from rank 0's weights)."""
    if size() == 1:
        return model
    params = tuple(id(p) for p in model.parameters())
    known = _wrapped.get(model)
    if known is None or known[0] != params:
        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        known = params, nn.parallel.DistributedDataParallel(model, device_ids=ids)
        _wrapped[model] = known
    return known[1]


def same_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's BatchNorm running statistics. Each rank updates its own from
    its own batches; after an epoch, evaluation and scoring must see one model everywhere,
    the one rank 0 checkpoints."""
    if size() == 1:
        return
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    buffers = [b for b in target.buffers() if b.is_floating_point()]
    if buffers:
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src=0)
        offset = 0
        for b in buffers:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


M = TypeVar("M", bound=nn.Module)


def sync_batchnorm(model: M) -> M:
    """--sync-bn: BatchNorm statistics over the global batch instead of each rank's share."""
    if next(model.parameters()).device.type != "cuda":
        raise SalalError(
            "--sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU kernels); drop it here"
        )
    # The same model back, its BatchNorm layers swapped.
    converted: M = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
    return converted
