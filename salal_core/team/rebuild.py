"""A restarted service's queue, rebuilt from the run's journal.

A service holds its leases and the answers each image has in memory. When it restarts, the
run's questions are in the queue table and every answer is in the journal, so the queue is
rebuilt from them once the run's images have loaded (their positions are known then):

- an image asked and not answered is open again, with the skips it had (the engine asks it
  again too; the queue takes it once);
- with `--overlap K`, an image asked while K was in force that fewer than K labelers have
  answered still wants the others, although the engine has taken its first answer; one asked
  before (a run labeled alone, then served with --overlap 2) wants no more.

So an answer a labeler sent while the service was down is taken when it is sent again, and no
image is left short of its overlap. The run's labeled count starts from the journal too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from salal_core.events import LabeledCount, Query
from salal_core.run import consensus
from salal_core.run.oracle import SKIP
from salal_core.run.questions import Questions
from salal_core.run.records import JournalRow, LabelRecord


class AskedJournal(Protocol):
    """What the rebuild reads: the run store's questions and answers."""

    questions: Questions

    def journal_rows(self) -> list[JournalRow]: ...

    def labels(self) -> dict[int, LabelRecord]: ...

    def last_round(self) -> int: ...


@dataclass(frozen=True)
class Unfinished:
    """An image that still wants answers, with the ones it has: (labeler, label or SKIP)."""

    query: Query
    answers: tuple[tuple[str, int], ...]
    taken: bool  # the engine has its answer; the rest are wanted for the overlap


def unfinished(
    journal: AskedJournal, overlap: int, position_of: Callable[[int], int | None]
) -> list[Unfinished]:
    """The images of this load that still want answers, in the order they were asked."""
    asked = journal.questions.asked()
    overlap_from = journal.questions.overlap_from
    still_open = {q.item for q in journal.questions.open()}
    labeled = journal.labels()
    given = _answers(journal.journal_rows(), {q.item: q.round for q in asked})
    found = []
    for q in asked:
        position = position_of(q.item)
        if position is None:
            continue  # gone from the source since
        answers = given.get(q.item, {})
        query = Query(position, q.item, q.score, q.predicted, q.probabilities, q.round)
        if q.item not in labeled:
            if q.item in still_open:
                found.append(Unfinished(query, tuple(answers.items()), taken=False))
        elif (
            q.asked > overlap_from  # asked while the overlap was in force
            and len(answers) < overlap
            and any(label != SKIP for label in answers.values())
        ):
            found.append(Unfinished(query, tuple(answers.items()), taken=True))
    return found


def labeled_count(journal: AskedJournal, position_of: Callable[[int], int | None]) -> LabeledCount:
    """The run's count as the journal has it: the labeled images of this load (as the engine
    counts them on resuming), and the last round finished."""
    labeled = sum(1 for item in journal.labels() if position_of(item) is not None)
    return LabeledCount(labeled, journal.last_round())


def _answers(rows: Iterable[JournalRow], rounds: dict[int, int]) -> dict[int, dict[str, int]]:
    """Each asked item's answers by the people who gave them, as the live queue counts them
    (answers.py): their standing labels (consensus.py), and where they have none, a skip of
    the question as asked now that they did not take back. A correction made in review is no
    answer to a question, and is left out as the live queue leaves it out."""
    asked = [r for r in rows if r.labeler and r.item in rounds and not r.correction]
    given = {
        item: {v.record.labeler: v.record.label for v in votes}
        for item, votes in consensus.standing_votes(asked).items()
    }
    last = {(r.item, r.labeler): r for r in asked}  # each labeler's latest word on each item
    for (item, labeler), row in last.items():
        if row.kind == "skip" and row.round == rounds[item]:
            given.setdefault(item, {}).setdefault(labeler, SKIP)
    return given
