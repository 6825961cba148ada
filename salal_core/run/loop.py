"""The active-learning loop: train, score the pool, ask, wait for labels, repeat.

It knows nothing about who answers, how a model trains or where things are saved: it is handed
a `Learner`, an `Oracle` and a `LoopJournal`. It asks the oracle ahead of time (`lookahead`
batches) and collects the oldest batch only when it needs new labels, so a person keeps
labeling while the model trains. Everything here is in positions of the loaded data; `item_ids`
names each position's image for the journal.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from salal_core.config import RunConfig
from salal_core.events import Emit, LabelsAdded, Notice, PhaseChanged, Query, QueryReady, RoundEnded
from salal_core.learn.learner import Learner
from salal_core.run.labels import LabelState
from salal_core.run.oracle import Oracle
from salal_core.run.stability import StopSet, is_flat, is_stable
from salal_core.run.summary import AccuracySource, CurvePoint, StopReason
from salal_core.selection import acquire
from salal_core.selection.pool import Pool, PoolPart

EMBEDDINGS: tuple[PoolPart, ...] = ("embeddings",)
HOLDOUT_EVERY = 5  # without a test split, one labeled item in five measures accuracy


class LoopJournal(Protocol):
    """Where the loop's questions and rounds are kept (the engine's run journal)."""

    def save_queries(self, queries: Sequence[Query]) -> None: ...

    def mark_consumed(self, items: Sequence[int]) -> None: ...

    def current_labels(self) -> dict[int, int]:
        """Item id -> its label as the journal now says (corrections made in review too)."""
        ...

    def save_round(
        self,
        round_: int,
        curve: Sequence[CurvePoint],
        generator_state: torch.Tensor,
        stop_set: StopSet | None,
    ) -> None: ...


class ActiveLoop:
    def __init__(
        self,
        config: RunConfig,
        learner: Learner,
        oracle: Oracle,
        journal: LoopJournal,
        state: LabelState,
        emit: Emit,
        *,
        item_ids: np.ndarray,
        priority: np.ndarray,
        generator: torch.Generator,
        start_round: int = 0,
        open_queries: Sequence[Query] = (),
        curve: Sequence[CurvePoint] = (),
        stop_set: StopSet | None = None,
    ) -> None:
        self.config, self.learner, self.oracle, self.journal = config, learner, oracle, journal
        self.state, self.emit = state, emit
        self.item_ids, self.priority, self.generator = item_ids, priority, generator
        self.round = start_round
        self.acquisition = acquire.get(config.active.acquisition)
        n = state.size
        self.target = config.target_count(n)
        self.query_count = config.query_count(n)
        # Held out by identity: the same images stay held out however the pool changes.
        self.holdout = np.zeros(n, dtype=bool)
        if not learner.has_test:
            self.holdout = (priority % HOLDOUT_EVERY) == 0
        self.pending: deque[list[Query]] = deque()
        self.curve: list[CurvePoint] = list(curve)
        self.stop_set = stop_set  # drawn at the first round that has none
        # Asked and not yet answered, in batches of a query each as they were asked: a person
        # who labeled through pretraining trains round 0 on the first batch, not on all.
        asked = list(open_queries)
        for start in range(0, len(asked), max(1, self.query_count)):
            self._ask(asked[start : start + self.query_count])

    @property
    def accuracy_source(self) -> AccuracySource:
        return "test" if self.learner.has_test else "held-out"

    def _held_out(self) -> np.ndarray | None:
        """Where accuracy is measured: None for the test split, else the held-out labels."""
        if self.learner.has_test:
            return None
        return np.flatnonzero(self.state.labeled_mask & self.holdout)

    # ---------------------------------------------------------------- scoring
    def score_pool(self, count: int, round_: int, cold: bool = False) -> list[Query]:
        """The `count` pool items the acquisition strategy picks, in the order it picked them.
        `cold`: nothing is labeled and no classifier exists, so the cold-start strategy
        chooses (random stays random: it is the baseline), and the guesses shown are uniform."""
        available = ~self.state.labeled_mask
        for batch in self.pending:  # already asked: not asked twice
            available[[q.index for q in batch]] = False
        pool = np.flatnonzero(available)
        count = min(count, len(pool))
        if count == 0:
            return []
        strategy = self.acquisition
        if cold and strategy.name != "random":
            strategy = acquire.get(acquire.COLD_START)
        self.emit(PhaseChanged("scoring", f"{strategy.name} over {len(pool)} images"))
        seen = self.learner.pool_pass(pool, strategy.parts)
        labeled = self.state.labeled_indices()
        labeled_embeddings = seen.embeddings[:0]
        if strategy.sees_labeled and len(labeled):
            labeled_embeddings = self.learner.pool_pass(labeled, EMBEDDINGS).embeddings
        device = seen.probabilities.device
        chosen, scores = strategy.select(
            Pool(
                seen.probabilities,
                seen.features,
                seen.embeddings,
                labeled_embeddings,
                torch.from_numpy(self.priority[pool]).to(device),
            ),
            count,
            self.generator,
        )
        n_classes = self.learner.num_classes
        if cold:
            guesses = [tuple([1.0 / n_classes] * n_classes)] * len(chosen)
        else:
            mean = seen.probabilities.mean(0)[chosen].cpu().tolist()
            guesses = [tuple(float(v) for v in p) for p in mean]
        positions = pool[chosen.cpu().numpy()]
        return [
            self._query(int(i), float(s), p, round_)
            for i, s, p in zip(positions, scores.cpu().tolist(), guesses, strict=True)
        ]

    def cold_start_queries(self, count: int, round_: int) -> list[Query]:
        """With no labels there is no classifier to ask: the first batch comes from the
        backbone's features alone (typiclust), or, for the random baseline, from the seeded
        per-image priority."""
        return self.score_pool(count, round_, cold=True)

    def _query(self, index: int, score: float, probs: tuple[float, ...], round_: int) -> Query:
        predicted = int(np.argmax(probs))
        rounded = tuple(round(v, 5) for v in probs)
        return Query(index, int(self.item_ids[index]), score, predicted, rounded, round_)

    # ---------------------------------------------------------------- asking
    def _ask(self, queries: list[Query]) -> None:
        if not queries:
            return
        self.journal.save_queries(queries)
        self.pending.append(queries)
        self.oracle.ask(queries)  # first: whoever hears QueryReady finds them in the oracle
        self.emit(QueryReady(queries[0].round, tuple(queries)))

    @property
    def outstanding(self) -> int:
        """Items asked about and not yet collected."""
        return sum(len(b) for b in self.pending)

    def top_up(self) -> None:
        """Keep `lookahead` batches asked, without asking past the budget."""
        missing = self.config.active.lookahead - len(self.pending)
        room = self.target - self.state.num_labeled - self.outstanding
        sizes = []
        while missing > 0 and room > 0:
            sizes.append(min(self.query_count, room))
            room -= sizes[-1]
            missing -= 1
        if not sizes:
            return
        ranked = self.score_pool(sum(sizes), self.round + 1)
        for size in sizes:
            batch, ranked = ranked[:size], ranked[size:]
            self._ask(batch)

    def collect(self, round_: int) -> None:
        """Wait for the oldest batch's answers and add them to the labeled set as `round_`."""
        batch = self.pending[0]
        self.emit(PhaseChanged("waiting", f"waiting for {len(batch)} answers"))
        answers = self.oracle.collect([q.index for q in batch])
        self.pending.popleft()
        new = [
            q.index for q in batch if q.index in answers and not self.state.labeled_mask[q.index]
        ]
        self.state.add(new, [answers[i] for i in new], round_)
        self.journal.mark_consumed([q.item for q in batch])
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
    def run(self) -> StopReason:
        """Until the budget is spent or the pool is empty; the oracle closing raises
        OracleClosed, which the engine turns into a stopped run."""
        # A resumed run whose last checkpoint already saw every label skips straight to asking.
        up_to_date = bool(self.curve) and self.curve[-1].labeled == self.state.num_labeled
        if up_to_date:
            self.round = self.curve[-1].round
        while self.state.num_labeled == 0:  # cold start: nothing labeled at all yet
            if not self.pending:
                self._ask(self.cold_start_queries(self.query_count, 0))
            self.collect(0)
        while True:
            if not up_to_date:
                self.finish_round()
            up_to_date = False
            if self.state.num_labeled >= self.target:
                return "budget"
            if self.flat():
                return "flat"
            if self.stable():
                return "stable"
            self.top_up()
            if not self.pending:
                return "pool empty"
            self.collect(self.round + 1)
            self.round += 1

    def finish_round(self) -> None:
        """Train on every label so far, measure, record the curve point, checkpoint."""
        start = time.perf_counter()
        self.take_corrections()
        labels = self.state.labels
        train = np.flatnonzero(self.state.labeled_mask & ~self.holdout)
        held_out = self._held_out()
        if len(train):
            accuracy = self.learner.fit(train, labels, self.round, held_out)
        else:
            accuracy = self.learner.accuracy(held_out, labels)
        kappa = self.predict_stop_set()
        labeled = self.state.num_labeled
        point = CurvePoint(
            self.round,
            labeled,
            labeled / self.state.size,
            accuracy,
            time.perf_counter() - start,
            kappa,
            self.learner.head_input,
        )
        gained = accuracy - self.curve[-1].test_accuracy if self.curve else float("nan")
        self.curve.append(point)
        self.journal.save_round(self.round, self.curve, self.generator.get_state(), self.stop_set)
        # After the checkpoint: whoever hears that a round ended can rely on it being saved.
        pool = self.state.size - labeled
        self.emit(
            RoundEnded(
                self.round,
                labeled,
                self.target,
                accuracy,
                pool,
                gained,
                kappa,
                self.learner.head_input,
            )
        )

    def predict_stop_set(self) -> float:
        """This round's predictions on the stop set, kept for the next round; returns Cohen's
        kappa against the last round's (NaN when there is none)."""
        if self.stop_set is None:
            self.stop_set = StopSet.draw(self.item_ids, self.priority, ~self.state.labeled_mask)

        def predict(positions: np.ndarray) -> np.ndarray:
            probs = self.learner.pool_pass(positions, ()).probabilities.mean(0)
            return np.asarray(probs.argmax(1).cpu().numpy())

        self.stop_set, kappa = self.stop_set.advance(
            self.item_ids, predict, self.learner.num_classes
        )
        return kappa

    def take_corrections(self) -> None:
        """Labels corrected in review while the loop ran (journaled by the app) count from
        this round on: the journal is the truth, the label state follows it."""
        current = self.journal.current_labels()
        labeled = self.state.labeled_indices()
        wanted = {
            int(p): current[int(self.item_ids[p])]
            for p in labeled
            if int(self.item_ids[p]) in current
        }
        changed = self.state.relabel(wanted)
        if changed:
            self.emit(Notice(f"{len(changed)} corrected labels taken in", level="info"))

    def stable(self) -> bool:
        """--stop-when-stable: the predictions have stopped changing (stability.py)."""
        return self.config.active.stop_when_stable and is_stable([p.kappa for p in self.curve])

    def flat(self) -> bool:
        """--stop-when-flat R: the accuracy curve has gone flat (stability.py)."""
        accuracies = [p.test_accuracy for p in self.curve]
        return is_flat(accuracies, self.config.active.stop_when_flat)
