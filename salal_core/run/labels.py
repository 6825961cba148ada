"""Labels: which item holds which class, since which round, and how that is rebuilt on resume.

Positions (0..N-1 over the loaded training images) are what the engine computes with; item ids
are the run's stable names for images, known by content digest. `RunItems` joins the two each
time a run loads its data, so a journal written against one load is read against the next,
whatever was added, removed or renamed in between.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

from salal_core.config import RunConfig
from salal_core.data.identity import item_priority
from salal_core.data.load import balanced_subset
from salal_core.data.sources import Split
from salal_core.errors import SalalError
from salal_core.events import ORACLE_NAMES, Notice, Query
from salal_core.run.oracle import Answer
from salal_core.run.records import JournalRow, LabelRecord, QueuedItem, StoredItem


class LabelState:
    """Each training item holds the round it was labeled in (-1 while it sits in the pool), so
    the history comes for free and the pool is simply `round < 0`. Positions only."""

    def __init__(self, size: int) -> None:
        self.round = np.full(size, -1, dtype=np.int64)
        self.labels = np.full(size, -1, dtype=np.int64)

    @property
    def size(self) -> int:
        return len(self.round)

    @property
    def labeled_mask(self) -> np.ndarray:
        return self.round >= 0

    @property
    def num_labeled(self) -> int:
        return int(self.labeled_mask.sum())

    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labeled_mask)

    def pool_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled_mask)

    def add(
        self,
        indices: Sequence[int] | np.ndarray,
        labels: Sequence[int] | np.ndarray,
        round_: int | Sequence[int],
    ) -> None:
        """Label items of the pool; labeling an item twice is a bug, so it raises."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) == 0:
            return
        if (idx < 0).any() or (idx >= self.size).any():
            raise ValueError(f"label position out of range 0..{self.size - 1}")
        if len(np.unique(idx)) != len(idx) or self.labeled_mask[idx].any():
            raise ValueError(f"items labeled twice: {idx[self.labeled_mask[idx]].tolist()}")
        self.labels[idx] = np.asarray(labels, dtype=np.int64)
        self.round[idx] = np.asarray(round_, dtype=np.int64)

    def relabel(self, labels: dict[int, int]) -> list[int]:
        """Take corrections (position -> class) of labeled items; the round they were first
        labeled in stays. Returns the positions whose label changed."""
        changed = [
            p for p, label in labels.items() if self.labeled_mask[p] and self.labels[p] != label
        ]
        for p in changed:
            self.labels[p] = labels[p]
        return changed


@dataclass(frozen=True)
class RunItems:
    """The run's items as this load of the data holds them."""

    ids: np.ndarray  # (N,) int64: position -> item id
    digests: tuple[str, ...]  # position -> content digest
    known: frozenset[int]  # every item id the run has, present now or not
    added: int  # images this load brought that the run had not seen
    missing: frozenset[int]  # item ids the run knew that this load lacks
    changes: tuple[StoredItem, ...]  # rows to write: new items, and known ones read elsewhere

    @classmethod
    def resolve(cls, stored: Sequence[StoredItem], train: Split) -> RunItems:
        """Match this load's images to the run's items by digest; new ones get new ids.

        A run that has items and shares not one of them with this load is refused: its labels
        were given to other images."""
        by_digest = {s.digest: s for s in stored}
        if stored and not any(d in by_digest for d in train.digests):
            raise SalalError(
                "none of these images belong to this run (no content digest matches); pass the "
                "--data the run was created with, or start a new run"
            )
        next_id = max((s.item for s in stored), default=-1) + 1
        ids = np.empty(len(train), dtype=np.int64)
        changes: list[StoredItem] = []
        added = 0
        for position, (digest, source_id) in enumerate(zip(train.digests, train.ids, strict=True)):
            known = by_digest.get(digest)
            if known is None:
                known = StoredItem(next_id, source_id, digest)
                next_id += 1
                added += 1
                changes.append(known)
            elif known.source_id != source_id:  # renamed or moved: the label stays with it
                changes.append(StoredItem(known.item, source_id, digest))
            ids[position] = known.item
        present = set(ids.tolist())
        all_ids = {s.item for s in stored} | present
        return cls(
            ids=ids,
            digests=tuple(train.digests),
            known=frozenset(all_ids),
            added=added if stored else 0,
            missing=frozenset({s.item for s in stored} - present),
            changes=tuple(changes),
        )

    def notices(self, labeled: set[int]) -> list[Notice]:
        """What a person should hear about how the source changed since the run last read it."""
        out = []
        if self.added:
            out.append(Notice(f"{self.added} new images joined the pool", level="info"))
        if self.missing:
            out.append(
                Notice(
                    f"{len(self.missing)} of this run's images are no longer in the source "
                    f"({len(self.missing & labeled)} labeled): they leave the pool; their labels "
                    "stay in the journal and the export"
                )
            )
        return out

    def positions(self) -> dict[int, int]:
        """Item id -> position, for the items this load holds."""
        return {int(item): p for p, item in enumerate(self.ids)}


def check_journal(
    rows: Sequence[JournalRow], items: frozenset[int], classes: int, highest_round: int
) -> None:
    """Refuse a journal that names what the run does not have, before anything trains on it:
    a record edited by hand, a bug, or a bad import. The database keeps whatever type it was
    given (1.5 or "x" in an INTEGER column), so the types are checked as well as the values."""
    for row in rows:
        problem = None
        if not _whole(row.item) or row.item not in items:
            problem = f"names item {row.item!r}, which this run does not have"
        elif row.kind == "label" and not (_whole(row.label) and 0 <= row.label < classes):
            problem = f"gives class {row.label!r}, but the run has classes 0..{classes - 1}"
        elif row.kind != "revert" and row.oracle not in ORACLE_NAMES:
            problem = f"comes from an unknown oracle {row.oracle!r}"
        elif row.kind != "revert" and (dated := _misdated(row.round, highest_round)):
            problem = dated
        elif not isinstance(row.time, int | float) or not math.isfinite(row.time):
            problem = f"was given at {row.time!r}, which is not a time"
        if problem:
            raise SalalError(
                f"journal record {row.seq} {problem}; the run directory was changed outside "
                "salal: export the labels with salal-core export and start a new run"
            )


def _whole(value: object) -> TypeGuard[int]:
    """Whether a value read from the journal is an integer (not a float or text put there)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _misdated(round_: object, highest_round: int) -> str:
    """What is wrong with a record's round ("" when nothing is)."""
    if not _whole(round_):
        return f"is dated round {round_!r}, which is not a round"
    if round_ > highest_round:
        return f"is dated round {round_}, after the last round asked ({highest_round})"
    if round_ < 0:
        return f"is dated round {round_}, before the first (0)"
    return ""


def restore(records: dict[int, LabelRecord], items: RunItems) -> LabelState:
    """The journal's labels, on the positions their images hold in this load. Labels of images
    that are gone stay in the journal (and the export); they just have no position now."""
    where = items.positions()
    state = LabelState(len(items.ids))
    present = [r for r in records.values() if r.item in where]
    state.add(
        [where[r.item] for r in present],
        [r.label for r in present],
        [max(r.round, 0) for r in present],
    )
    return state


def agreement_with_truth(
    records: Sequence[LabelRecord], items: RunItems, truth: np.ndarray
) -> float | None:
    """The share of these labels that match a known ground truth (None: nothing to compare,
    as in a folder nobody labeled before)."""
    where = items.positions()
    known = [r for r in records if r.item in where and truth[where[r.item]] >= 0]
    if not known:
        return None
    return float(np.mean([truth[where[r.item]] == r.label for r in known]))


def initial_answers(config: RunConfig, truth: np.ndarray, items: RunItems) -> list[Answer]:
    """The preset's initial fraction from the ground truth, class-balanced and seeded; none
    for a cold start (no initial fraction, or no ground truth to take it from)."""
    if config.active.initial_fraction <= 0 or not (truth >= 0).all():
        return []
    count = config.initial_count(len(truth))
    if config.active.class_balanced_initial:
        chosen = balanced_subset(truth, count, config.seed)
    else:
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(len(truth), count, replace=False))
    given = truth[chosen].copy()
    if config.active.label_noise > 0:  # mistakes on purpose, seeded: what review must find
        rng = np.random.default_rng(config.seed + 7)
        flip = rng.choice(
            len(chosen), round(config.active.label_noise * len(chosen)), replace=False
        )
        classes = int(truth.max()) + 1
        given[flip] = (given[flip] + rng.integers(1, classes, len(flip))) % classes
    now = time.time()
    return [
        Answer(int(i), int(items.ids[i]), int(g), 0, "initial", now)
        for i, g in zip(chosen, given, strict=True)
    ]


def sample_queries(
    config: RunConfig,
    items: RunItems,
    state: LabelState,
    classes: int,
    asked: Collection[int] = (),
) -> list[Query]:
    """A seeded sample of the pool, first in each image's identity-derived priority: what a
    person labels before any model or feature exists. Score 0, uniform guesses: no model.
    Positions in `asked` are left out: the next sample carries on where the last ended."""
    pool = np.setdiff1d(state.pool_indices(), np.fromiter(asked, dtype=np.int64))
    priority = item_priority(list(items.digests), config.seed)
    chosen = pool[np.argsort(priority[pool], kind="stable")][: config.query_count(state.size)]
    uniform = tuple([1.0 / classes] * classes)
    return [Query(int(i), int(items.ids[i]), 0.0, 0, uniform, 0) for i in chosen]


def still_open(
    queued: Sequence[QueuedItem], items: RunItems, state: LabelState
) -> tuple[list[Query], list[int]]:
    """The queue as a resumed run finds it: questions still open, on their positions in this
    load, and the items to mark consumed (answered since, or gone from the source)."""
    where = items.positions()
    open_ = [
        Query(where[q.item], q.item, q.score, q.predicted, q.probabilities, q.round)
        for q in queued
        if q.item in where and not state.labeled_mask[where[q.item]]
    ]
    done = sorted({q.item for q in queued} - {q.item for q in open_})
    return open_, done
