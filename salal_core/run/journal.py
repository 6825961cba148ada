"""The loop's journal over the run directory: questions and their answers' consumption go to
the store, each finished round to a checkpoint holding what resume reads."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from salal_core.data.identity import items_digest
from salal_core.events import Query
from salal_core.learn.learner import Learner
from salal_core.run.checkpoint import ModelShape, RoundCheckpoint
from salal_core.run.stability import StopSet
from salal_core.run.store import RunStore
from salal_core.run.summary import CurvePoint


class RunJournal:
    """The loop's journal: queries and consumption to the store, rounds as checkpoints."""

    def __init__(self, store: RunStore, learner: Learner, shape: ModelShape) -> None:
        self.store, self.learner, self.shape = store, learner, shape
        digests = [s.digest for s in store.items()]  # item-id order, this load's new ones too
        self.items, self.items_digest = len(digests), items_digest(digests)

    def save_queries(self, queries: Sequence[Query]) -> None:
        self.store.questions.save(queries)

    def mark_consumed(self, items: Sequence[int]) -> None:
        self.store.questions.mark_consumed(items)

    def current_labels(self) -> dict[int, int]:
        return {item: r.label for item, r in self.store.labels().items()}

    def save_round(
        self,
        round_: int,
        curve: Sequence[CurvePoint],
        generator_state: torch.Tensor,
        stop_set: StopSet | None,
    ) -> None:
        model, optimizer = self.learner.state_dicts()
        checkpoint = RoundCheckpoint(
            round_,
            model,
            optimizer,
            self.shape,
            generator_state,
            tuple(curve),
            self.items,
            self.items_digest,
            stop_set,
        )
        self.store.save_checkpoint(checkpoint.name, checkpoint.to_payload())
