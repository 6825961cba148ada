"""Which label counts when several people answer one image.

The journal keeps every answer with its labeler. Replaying it gives each labeler's standing
answer on each image (their last label, unless they took it back). With one answer an image
(overlap 1) the latest standing answer counts, whoever gave it: a correction in review
replaces the label it corrects. With `--overlap K`, the first answer counts until K people
have answered; then the majority does, and a tie goes to the earliest answer among the tied
labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from salal_core.run.records import JournalRow, LabelRecord


@dataclass(frozen=True)
class Vote:
    """One labeler's standing answer on an image, and when (journal order) they gave it."""

    record: LabelRecord
    seq: int


def standing_votes(rows: Iterable[JournalRow]) -> dict[int, list[Vote]]:
    """Item -> each labeler's standing answer, in the order they were given. A revert takes
    back its labeler's own answer only; a skip leaves an earlier answer standing."""
    votes: dict[int, dict[str, Vote]] = {}
    last_kind: dict[tuple[int, str], str] = {}
    for row in rows:
        key = (row.item, row.labeler)
        if row.kind == "label" and row.label is not None:
            record = LabelRecord(
                row.item, row.label, row.round or 0, row.oracle or "", row.time, row.labeler
            )
            votes.setdefault(row.item, {})[row.labeler] = Vote(record, row.seq)
        elif row.kind == "revert" and last_kind.get(key) == "label":
            votes.get(row.item, {}).pop(row.labeler, None)
        last_kind[key] = row.kind
    return {
        item: sorted(by_labeler.values(), key=lambda v: v.seq)
        for item, by_labeler in votes.items()
        if by_labeler
    }


def counting_answer(votes: list[Vote], overlap: int) -> LabelRecord:
    """The answer that counts for training among an image's standing votes (non-empty)."""
    if overlap <= 1:
        return votes[-1].record
    if len(votes) < overlap:
        return votes[0].record
    tally = Counter(v.record.label for v in votes)
    most = max(tally.values())
    return next(v.record for v in votes if tally[v.record.label] == most)


def current_labels(rows: Iterable[JournalRow], overlap: int) -> dict[int, LabelRecord]:
    """Replay the journal: the label that counts on every labeled item, by item id."""
    return {item: counting_answer(votes, overlap) for item, votes in standing_votes(rows).items()}
