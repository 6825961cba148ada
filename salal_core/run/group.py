"""Rank 0 leads, the other ranks follow: how one run spans a torchrun group.

Rank 0 runs the command as it runs alone: the run directory, the oracle, the loop, the
progress bars are its own, and nothing else writes. Whenever the work needs every rank, rank 0
tells the group what to do next, and the others (`follow`) do their share of exactly that:
pretrain, build a run's model, fit, measure, score. They never decide anything, so they can
never disagree with rank 0 about what comes next.

A message is a broadcast; between messages no rank waits on another. If rank 0 fails in the
middle of a step, it stops telling (the group is out of step) and exits; torchrun then ends the
other ranks, and `--max-restarts` starts the group again on the same run directory.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from salal_core import distributed
from salal_core.data import DeviceData
from salal_core.data.load import load_dataset, load_for_run
from salal_core.errors import SalalError, TrainingFailed
from salal_core.events import ignore
from salal_core.files import atomic_write_text
from salal_core.learn.learner import Learner, PoolPass, TorchLearner
from salal_core.learn.pretrain import pretrain
from salal_core.run.plan import PretrainPlan, RunPlan, read_round, start_model
from salal_core.runtime import set_up
from salal_core.selection.pool import ALL_PARTS, PoolPart

T = TypeVar("T")
GROUP_FILE = ".group"  # rank 0 writes a token here; every rank must read it back


@dataclass(frozen=True)
class Fit:
    indices: np.ndarray
    labels: np.ndarray
    round: int
    held_out: np.ndarray | None


@dataclass(frozen=True)
class Measure:
    held_out: np.ndarray | None
    labels: np.ndarray


@dataclass(frozen=True)
class Score:
    indices: np.ndarray
    parts: tuple[PoolPart, ...]


@dataclass(frozen=True)
class RunEnded:
    pass


@dataclass(frozen=True)
class Done:
    code: int  # the command's exit status on rank 0


Message = PretrainPlan | RunPlan | Fit | Measure | Score | RunEnded | Done

_out_of_step = False  # rank 0 failed inside a step: the others are not listening any more


def tell(message: Message) -> None:
    """Rank 0: have every other rank do `message` (nothing in a world of one)."""
    if distributed.size() > 1 and distributed.rank() == 0 and not _out_of_step:
        distributed.broadcast(message)


def listen() -> Message:
    message: Message = distributed.broadcast(None)
    return message


def finish(code: int) -> bool:
    """Rank 0, at the end of a command: the other ranks exit with the same status. False if
    the group is out of step (nobody listens any more)."""
    tell(Done(code))
    return not _out_of_step


# ------------------------------------------------------------------------------ rank 0


class LeadingLearner:
    """Rank 0's learner in a group: tells each call to the other ranks, then takes its own
    part. Training failures are judged on summed figures, so every rank fails alike; anything
    else escaping a call leaves the group out of step."""

    def __init__(self, inner: TorchLearner) -> None:
        self.inner = inner
        self.has_test, self.num_classes = inner.has_test, inner.num_classes
        self.members = inner.members

    @property
    def head_input(self) -> str:
        return self.inner.head_input

    def fit(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        tell(Fit(indices, labels, round_, held_out))
        return self._step(lambda: self.inner.fit(indices, labels, round_, held_out))

    def accuracy(self, held_out: np.ndarray | None, labels: np.ndarray) -> float:
        tell(Measure(held_out, labels))
        return self._step(lambda: self.inner.accuracy(held_out, labels))

    def pool_pass(self, indices: np.ndarray, parts: Collection[PoolPart] = ALL_PARTS) -> PoolPass:
        tell(Score(indices, tuple(parts)))
        return self._step(lambda: self.inner.pool_pass(indices, parts))

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.inner.state_dicts()

    @staticmethod
    def _step(work: Callable[[], T]) -> T:
        with in_step():
            return work()


@contextlib.contextmanager
def in_step() -> Iterator[None]:
    """Rank 0, around work every rank does together. A training failure happens on every
    rank at the same step; anything else escaping (a stop, a full disk, a bug) may leave the
    others inside a collective, so rank 0 stops telling and exits, and torchrun (or the app)
    ends the others rather than have a message meet a collective and hang."""
    global _out_of_step
    try:
        yield
    except TrainingFailed:
        raise
    except BaseException:
        _out_of_step = distributed.size() > 1
        raise


def lead(learner: TorchLearner) -> Learner:
    """The learner rank 0's loop drives: the learner itself in a world of one."""
    return LeadingLearner(learner) if distributed.size() > 1 else learner


@contextlib.contextmanager
def running(plan: RunPlan) -> Iterator[None]:
    """Rank 0, around one run: tell the plan, check that every rank sees the run directory it
    writes (checkpoints are read back from it on resume), and end the run on every rank when
    the block ends, unless the group fell out of step (`in_step`)."""
    if distributed.size() == 1:
        yield
        return
    atomic_write_text(plan.run_dir / GROUP_FILE, plan.token)
    tell(plan)
    try:
        if _blind_ranks(seen=True):
            raise SalalError(
                f"some ranks do not see {plan.run_dir} as rank 0 writes it; with more than "
                "one node, put the run directory on a filesystem every node mounts"
            )
        with in_step():  # pretraining is every rank's work too
            yield
    finally:
        tell(RunEnded())


def new_token() -> str:
    return secrets.token_hex(8)


def _blind_ranks(seen: bool) -> int:
    """How many ranks do not see the run directory rank 0 wrote."""
    return distributed.count(not seen)


# ------------------------------------------------------------------------------ the others


def follow(world: distributed.World) -> int:
    """A rank other than 0: do what rank 0 says until it says the command is done."""
    while True:
        message = listen()
        if isinstance(message, Done):
            return message.code
        if isinstance(message, PretrainPlan):
            _follow_pretrain(message, world)
        elif isinstance(message, RunPlan):
            _follow_run(message, world)
        # A RunEnded here closes a run this rank already left (it failed alike on every rank).


def _follow_pretrain(plan: PretrainPlan, world: distributed.World) -> None:
    config = plan.config
    device = set_up(config)
    data = DeviceData(
        load_dataset(config.data, config.seed, write_cache=False), device, shard=world.shard
    )
    generator = torch.Generator(device=device).manual_seed(config.seed)
    try:
        pretrain(config, data, ignore, generator)
    except TrainingFailed:
        return  # rank 0 says why


def _follow_run(plan: RunPlan, world: distributed.World) -> None:
    path = plan.run_dir / GROUP_FILE
    seen = path.exists() and path.read_text() == plan.token
    if _blind_ranks(seen):
        return  # rank 0 says so, and ends the command
    config = plan.config
    device = set_up(config)
    images = load_for_run(config, plan.class_names, plan.train_items, write_cache=False)
    data = DeviceData(images, device, shard=world.shard)
    checkpoint = read_round(plan.checkpoint) if plan.checkpoint is not None else None
    try:
        started = start_model(plan, data, checkpoint, ignore)
    except TrainingFailed:
        return  # rank 0 says why
    model, generator = started.model, started.generator
    _serve(
        TorchLearner(
            config, model, data, generator, ignore, started.resumed.optimizer, plan.on_collapse
        )
    )


def _serve(learner: TorchLearner) -> None:
    while True:
        message = listen()
        try:
            if isinstance(message, Fit):
                learner.fit(message.indices, message.labels, message.round, message.held_out)
            elif isinstance(message, Measure):
                learner.accuracy(message.held_out, message.labels)
            elif isinstance(message, Score):
                learner.pool_pass(message.indices, message.parts)
            elif isinstance(message, RunEnded):
                return
            else:
                raise RuntimeError(f"rank 0 sent {type(message).__name__} in the middle of a run")
        except TrainingFailed:
            continue  # rank 0 failed the same way, and decides what follows
