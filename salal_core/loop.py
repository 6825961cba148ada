"""The active-learning loop: train, score the pool, ask, wait for labels, repeat.

It knows nothing about who answers: it asks an `Oracle` ahead of time (`lookahead` batches)
and collects the oldest batch only when it needs new labels, so a person keeps labeling while
the model trains.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import acquire
from .config import RunConfig, to_dict
from .data import DeviceData
from .events import Emit, LabelsAdded, PhaseChanged, Query, QueryReady, RoundEnded
from .model import Net
from .oracle import Oracle
from .pool import LabelState
from .store import RunStore
from .train import evaluate, fit, make_optimizer, predict

HOLDOUT_EVERY = 5  # without a test split, one labeled item in five measures accuracy


class ActiveLoop:
    def __init__(
        self,
        config: RunConfig,
        data: DeviceData,
        model: Net,
        oracle: Oracle,
        state: LabelState,
        emit: Emit,
        *,
        store: RunStore | None = None,
        start_round: int = 0,
        open_queries: Sequence[Query] = (),
        optimizer_state: dict | None = None,
        curve: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.config, self.data, self.model, self.oracle = config, data, model, oracle
        self.state, self.emit, self.store = state, emit, store
        self.round = start_round
        self.acquisition = acquire.get(config.active.acquisition)
        n = data.num_train
        self.target = config.target_count(n)
        self.query_count = config.query_count(n)
        # One seeded generator for shuffling, augmentation, bootstrap weights and random scores.
        self.generator = torch.Generator(device=data.device).manual_seed(config.seed + 1)
        cpu = torch.Generator().manual_seed(config.seed + 2)
        self.priority = torch.randperm(n, generator=cpu).to(data.device)  # tie-breaking order
        self.holdout = np.zeros(n, dtype=bool)
        if not data.has_test:
            self.holdout = (self.priority.cpu().numpy() % HOLDOUT_EVERY) == 0
        self.pending: deque[list[int]] = deque()
        self.optimizer: torch.optim.Optimizer | None = None
        self._optimizer_state = optimizer_state
        self.curve: list[dict[str, Any]] = list(curve)
        if open_queries:
            self._ask(list(open_queries))

    # ---------------------------------------------------------------- evaluation
    def test_accuracy(self) -> tuple[float, float]:
        if self.data.has_test:
            return evaluate(
                self.model,
                self.data.test_images,
                self.data.test_labels,
                self.data,
                self.config.eval_batch_size,
            )
        held = np.flatnonzero(self.state.labeled_mask & self.holdout)
        if len(held) == 0:
            return float("nan"), float("nan")
        idx = torch.from_numpy(held).to(self.data.device)
        labels = torch.from_numpy(self.state.labels[held]).to(self.data.device)
        return evaluate(
            self.model, self.data.train_images[idx], labels, self.data, self.config.eval_batch_size
        )

    @property
    def accuracy_source(self) -> str:
        return "test split" if self.data.has_test else f"held-out 1 in {HOLDOUT_EVERY} labels"

    # ---------------------------------------------------------------- training
    def train_round(self) -> None:
        train_idx = np.flatnonzero(self.state.labeled_mask & ~self.holdout)
        if len(train_idx) == 0:
            return
        device = self.data.device
        targets = torch.from_numpy(self.state.labels).to(device)
        self.emit(PhaseChanged("training", f"round {self.round}: {len(train_idx)} labels"))
        optim = self.config.active.optim
        if self.optimizer is None and self._optimizer_state is not None:
            self.optimizer = make_optimizer(self.model, optim)
            self.optimizer.load_state_dict(self._optimizer_state)
        self.optimizer = fit(
            self.model,
            self.data,
            torch.from_numpy(train_idx).to(device),
            targets,
            optim,
            self.config.active.epochs_per_round,
            phase="finetune",
            round_=self.round,
            evaluate_fn=self.test_accuracy,
            emit=self.emit,
            generator=self.generator,
            optimizer=self.optimizer,
        )

    # ---------------------------------------------------------------- scoring
    def score_pool(self, count: int, round_: int) -> list[Query]:
        """The `count` pool items the acquisition function ranks first (global indices)."""
        available = ~self.state.labeled_mask
        for batch in self.pending:  # already asked: not asked twice
            available[batch] = False
        pool = np.flatnonzero(available)
        count = min(count, len(pool))
        if count == 0:
            return []
        self.emit(PhaseChanged("scoring", f"{self.acquisition.name} over {len(pool)} images"))
        pool_t = torch.from_numpy(pool).to(self.data.device)
        probs = predict(
            self.model, self.data.train_images[pool_t], self.data, self.config.eval_batch_size
        )  # (K, P, C)
        scores = self.acquisition.score(probs, self.generator)  # (P,)
        chosen = acquire.top_k(scores, count, self.priority[pool_t])
        mean = probs.mean(0)[chosen].cpu()
        chosen_scores = scores[chosen].cpu().tolist()
        indices = pool[chosen.cpu().numpy()]
        return [
            Query(int(i), float(s), int(p.argmax()), tuple(round(float(v), 5) for v in p), round_)
            for i, s, p in zip(indices, chosen_scores, mean, strict=True)
        ]

    def random_queries(self, count: int, round_: int) -> list[Query]:
        """Cold start: with no labels there is no classifier to ask, so the first batch is a
        seeded random sample of the pool."""
        pool = self.state.pool_indices()
        rng = np.random.default_rng(self.config.seed)
        chosen = rng.choice(pool, size=min(count, len(pool)), replace=False)
        uniform = tuple([1.0 / self.data.num_classes] * self.data.num_classes)
        return [Query(int(i), 0.0, 0, uniform, round_) for i in chosen]

    # ---------------------------------------------------------------- asking
    def _ask(self, queries: list[Query]) -> None:
        if not queries:
            return
        if self.store is not None:
            self.store.save_queries(queries)
        self.pending.append([q.index for q in queries])
        self.oracle.ask(queries)  # first: whoever hears QueryReady finds them in the oracle
        self.emit(QueryReady(queries[0].round, tuple(queries)))

    def _outstanding(self) -> int:
        return sum(len(b) for b in self.pending)

    def top_up(self) -> None:
        """Keep `lookahead` batches asked, without asking past the budget."""
        missing = self.config.active.lookahead - len(self.pending)
        room = self.target - self.state.num_labeled - self._outstanding()
        if missing <= 0 or room <= 0:
            return
        sizes = []
        while missing > 0 and room > 0:
            sizes.append(min(self.query_count, room))
            room -= sizes[-1]
            missing -= 1
        ranked = self.score_pool(sum(sizes), self.round + 1)
        for size in sizes:
            batch, ranked = ranked[:size], ranked[size:]
            self._ask(batch)

    def collect(self, round_: int) -> None:
        """Wait for the oldest batch's answers and add them to the labeled set as `round_`."""
        batch = self.pending[0]
        self.emit(PhaseChanged("waiting", f"waiting for {len(batch)} answers"))
        answers = self.oracle.collect(batch)
        self.pending.popleft()
        new = [i for i in batch if i in answers and not self.state.labeled_mask[i]]
        self.state.add(new, [answers[i] for i in new], round_)
        if self.store is not None:
            self.store.mark_consumed(batch)
        self.emit(
            LabelsAdded(
                round_,
                tuple(new),
                tuple(answers[i] for i in new),
                self.oracle.name,
                self.state.num_labeled,
                self.target,
            )
        )

    # ---------------------------------------------------------------- the loop
    def run(self) -> list[dict[str, Any]]:
        # A resumed run whose last checkpoint already saw every label skips straight to asking.
        up_to_date = bool(self.curve) and self.curve[-1]["labeled"] == self.state.num_labeled
        if up_to_date:
            self.round = int(self.curve[-1]["round"])
        while self.state.num_labeled == 0:  # cold start: nothing labeled at all yet
            if not self.pending:
                self._ask(self.random_queries(self.query_count, 0))
            self.collect(0)
        while True:
            if not up_to_date:
                self.finish_round()
            up_to_date = False
            if self.state.num_labeled >= self.target:
                break
            self.top_up()
            if not self.pending:
                break  # the pool is empty
            self.collect(self.round + 1)
            self.round += 1
        return self.curve

    def finish_round(self) -> None:
        """Train on every label so far, measure, record the learning-curve point, checkpoint."""
        start = time.perf_counter()
        self.train_round()
        _, test_acc = self.test_accuracy()
        labeled = self.state.num_labeled
        self.curve.append(
            {
                "round": self.round,
                "labeled": labeled,
                "fraction": labeled / self.state.size,
                "test_accuracy": test_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        self.emit(RoundEnded(self.round, labeled, self.target, test_acc, self.state.size - labeled))
        self.save_checkpoint()

    def save_checkpoint(self) -> None:
        if self.store is None:
            return
        self.store.save_checkpoint(
            f"round-{self.round:04d}",
            {
                "kind": "round",
                "round": self.round,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else {},
                "config": to_dict(self.config),
                "width": self.config.model.width,
                "classes": self.data.num_classes,
                "members": self.model.head.members,
                "label_round": torch.from_numpy(self.state.round.copy()),
                "labels": torch.from_numpy(self.state.labels.copy()),
                "curve": [dict(p) for p in self.curve],
                "rng": torch.get_rng_state(),
            },
        )
