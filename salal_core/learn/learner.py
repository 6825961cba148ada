"""The learner: what the active-learning loop may ask of a model, and the one that trains.

The loop never sees a network, a device or an optimizer; it hands over positions and labels
and gets back accuracy and a pool pass. That keeps its bookkeeping testable with a fake learner
in milliseconds, and keeps every training step in `train.py`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from salal_core.config import RunConfig
from salal_core.data import DeviceData
from salal_core.distributed import gather_rows
from salal_core.events import Emit, EpochEnded, Notice, PhaseChanged, PhaseStarted
from salal_core.learn.frozen import FrozenFeatures, fit_head
from salal_core.learn.inference import evaluate, pool_pass
from salal_core.learn.model import Net
from salal_core.learn.switch import cross_validate
from salal_core.learn.train import fit, make_optimizer
from salal_core.learn.watch import CollapseRule
from salal_core.selection.pool import ALL_PARTS, PoolPart


@dataclass(frozen=True)
class PoolPass:
    """What one pass over items gives selection, in the order the items were asked for."""

    probabilities: torch.Tensor  # (K, P, C): each committee member's class probabilities
    features: torch.Tensor  # (P, D): the head's input (gradient embeddings); (P, 0) if unasked
    embeddings: torch.Tensor  # (P, E): unit-scaled stage features, for distances; likewise


class Learner(Protocol):
    has_test: bool  # a labeled test split exists; otherwise accuracy comes from held-out labels
    num_classes: int
    members: int

    @property
    def head_input(self) -> str:
        """What the model's head reads now, in words for the status and the summary."""

    def fit(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        """Fine-tune on positions `indices`, whose classes are `labels[indices]`, measuring
        each epoch as `accuracy(held_out, labels)` does; returns the last measurement, which
        is the trained model's (measuring it again would cost a pass for the same figure)."""

    def accuracy(self, held_out: np.ndarray | None, labels: np.ndarray) -> float:
        """Accuracy on the test split (`held_out` None), or on those labeled positions."""

    def pool_pass(self, indices: np.ndarray, parts: Collection[PoolPart] = ALL_PARTS) -> PoolPass:
        """Probabilities, and the `parts` asked for, of the items at `indices`."""

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model, optimizer) state for a checkpoint."""


class TorchLearner:
    """A `Net` over device-resident data. Below `active.finetune_from` training labels a round
    fits the head alone on the frozen backbone's features (`frozen.py`), unless, from
    `active.cross_validate_from` labels on, on folders under `active.cross_validate_below`
    images, cross-validation says fine-tuning is not worse (`switch.py`). A fine-tuning round
    trains the whole network from the head fit on the same labels (linear probe, then
    fine-tuning: Kumar et al., 2022), continuously across rounds: the optimizer (and its
    momentum) carries over, the rate warms up and decays again each round."""

    def __init__(
        self,
        config: RunConfig,
        model: Net,
        data: DeviceData,
        generator: torch.Generator,
        emit: Emit,
        optimizer_state: dict[str, Any] | None = None,
        on_collapse: CollapseRule = "stop",
    ) -> None:
        self.config, self.model, self.data = config, model, data
        self.generator, self.emit, self.on_collapse = generator, emit, on_collapse
        self.has_test = data.has_test
        self.num_classes = data.num_classes
        self.members = model.head.members
        self.optimizer = make_optimizer(model, config.active.optim)
        if optimizer_state:
            self.optimizer.load_state_dict(optimizer_state)
        # Valid while the backbone is the one they were computed from: fine-tuning drops them.
        self.frozen: FrozenFeatures | None = None

    @property
    def head_input(self) -> str:
        return "rotnet"

    def fit(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        active, device = self.config.active, self.data.device
        positions = torch.from_numpy(indices).to(device)
        targets = torch.from_numpy(labels).to(device)
        if len(indices) < active.finetune_from:
            if not self._fine_tunes(indices, labels, round_):
                return self._fit_head(indices, labels, round_, held_out)
            # Each fold fine-tuned from the head fit on its labels: the round does as they did.
            assert self.frozen is not None  # the cross-validation's features
            fit_head(
                self.model, self.frozen, self.data, positions, targets[positions], self.generator
            )
        measured: list[tuple[float, float]] = []

        def measure() -> tuple[float, float]:
            measured.append(self._loss_and_accuracy(held_out, labels))
            return measured[-1]

        self.frozen = None
        self.emit(PhaseChanged("training", f"round {round_}: {len(indices)} labels"))
        fit(
            self.model,
            self.data,
            positions,
            targets,
            active.optim,
            active.epochs_per_round,
            phase="finetune",
            round_=round_,
            evaluate_fn=measure,
            emit=self.emit,
            generator=self.generator,
            optimizer=self.optimizer,
            on_collapse=self.on_collapse,
        )
        return measured[-1][1]  # after the last epoch's statistics: the model as it stays

    def _fine_tunes(self, indices: np.ndarray, labels: np.ndarray, round_: int) -> bool:
        """Below `finetune_from`: whether cross-validation on these labels (from
        `cross_validate_from` of them on, on folders under `cross_validate_below` images) says
        fine-tuning is not worse than the head."""
        active = self.config.active
        check_from, below = active.cross_validate_from, active.cross_validate_below
        if check_from == 0 or len(indices) < max(check_from, 2):
            return False
        if below and self.data.num_train >= below:
            return False
        self.emit(PhaseChanged("training", f"round {round_}: cross-validating fine-tuning"))
        if self.frozen is None:
            self.frozen = FrozenFeatures.compute(self.model, self.data, self.config.eval_batch_size)
        verdict = cross_validate(
            self.model,
            self.frozen,
            self.optimizer,
            self.data,
            self.config,
            indices,
            labels,
            round_,
            self.generator,
            lambda model, frozen, held: self._measure(model, frozen, held, labels),
            self.emit,
        )
        self.emit(Notice(verdict.describe(round_), "info"))
        return verdict.fine_tune

    def _fit_head(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        """The head alone, to convergence, on frozen features: one "epoch" to the sinks."""
        started = time.perf_counter()
        what = f"round {round_}: {len(indices)} labels, the head on frozen features"
        self.emit(PhaseChanged("training", what))
        self.emit(PhaseStarted("finetune", round_, 1, 1))
        if self.frozen is None:
            self.frozen = FrozenFeatures.compute(self.model, self.data, self.config.eval_batch_size)
        positions = torch.from_numpy(indices).to(self.data.device)
        targets = torch.from_numpy(labels[indices]).to(self.data.device)
        loss, accuracy = fit_head(
            self.model, self.frozen, self.data, positions, targets, self.generator
        )
        test_loss, test_accuracy = self._loss_and_accuracy(held_out, labels)
        seconds = time.perf_counter() - started
        fit, held = (loss, accuracy), (test_loss, test_accuracy)
        self.emit(EpochEnded.head_fit(round_, fit, held, len(indices), seconds))
        return test_accuracy

    def accuracy(self, held_out: np.ndarray | None, labels: np.ndarray) -> float:
        return self._loss_and_accuracy(held_out, labels)[1]

    def _loss_and_accuracy(
        self, held_out: np.ndarray | None, labels: np.ndarray
    ) -> tuple[float, float]:
        if held_out is None:
            data, frozen = self.data, self.frozen
            if frozen is not None:  # the backbone has not moved: its features are at hand
                return frozen.evaluate(self.model, frozen.test_head, data.test_labels)
            return evaluate(
                self.model, data.test_images, data.test_labels, data, self.config.eval_batch_size
            )
        return self._measure(self.model, self.frozen, held_out, labels)

    def _measure(
        self, model: Net, frozen: FrozenFeatures | None, held_out: np.ndarray, labels: np.ndarray
    ) -> tuple[float, float]:
        """(loss, accuracy) of `model` on labeled pool positions, from `frozen` (its backbone's
        cached features) when given, else from the images."""
        if len(held_out) == 0:
            return float("nan"), float("nan")
        data = self.data
        idx = torch.from_numpy(held_out).to(data.device)
        mine = data.shard.mine(idx)  # each rank measures the held-out images it holds
        targets = torch.from_numpy(labels[held_out]).to(data.device)[mine]
        rows = idx[mine] // data.shard.size
        if frozen is not None:
            return frozen.evaluate(model, frozen.stages.head[rows], targets)
        return evaluate(model, data.train_images[rows], targets, data, self.config.eval_batch_size)

    def pool_pass(self, indices: np.ndarray, parts: Collection[PoolPart] = ALL_PARTS) -> PoolPass:
        """Each rank scores the items it holds; rank 0 gathers them back into the order of
        `indices` (the other ranks get an empty pass: rank 0 alone selects)."""
        data, ranks = self.data, self.data.shard.size
        idx = torch.from_numpy(indices).to(data.device)
        mine = data.shard.mine(idx)
        if self.frozen is not None:  # the backbone has not moved: its features are at hand
            probs, feats, embeddings = self.frozen.scores(self.model, idx[mine] // ranks)
        else:
            probs, feats, embeddings = pool_pass(
                self.model, data.train_images[idx[mine] // ranks], data, self.config.eval_batch_size
            )
        owner = idx % ranks
        counts = torch.bincount(owner, minlength=ranks).tolist()
        # Where each rank's rows go in the answer; the rows bring their positions along, so a
        # shard's padding can never slip in as an item, nor an item come back twice.
        order = torch.cat([torch.nonzero(owner == r).squeeze(1) for r in range(ranks)])
        held = gather_rows(idx[mine], counts)
        if ranks > 1 and held and not torch.equal(torch.cat(held), idx[order]):
            raise RuntimeError("the ranks scored other items than they were given")
        back = torch.argsort(order)

        def gathered(rows: torch.Tensor, wanted: bool = True) -> torch.Tensor:
            if not wanted:
                return rows.new_zeros((len(indices) if held else 0, 0))
            pieces = gather_rows(rows, counts)
            if ranks == 1:  # already in order: no copy of the whole pass
                return pieces[0]
            return torch.cat(pieces)[back] if pieces else rows[:0]

        all_probs = gathered(probs.permute(1, 0, 2))  # (P, K, C): rows first, for the gather
        return PoolPass(
            all_probs.permute(1, 0, 2),
            gathered(feats, "features" in parts),
            gathered(embeddings, "embeddings" in parts),
        )

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.model.state_dict(), self.optimizer.state_dict()
