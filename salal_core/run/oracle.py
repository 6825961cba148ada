"""Who answers the engine's queries: the ground truth, or a person fed through a queue.

The loop only ever calls `ask` (here are items, answer them when you can) and `collect` (give
me the answers to these, waiting if need be). Asking ahead of collecting is what lets a person
keep labeling while the engine trains.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from salal_core.errors import OracleClosed, SalalError
from salal_core.events import OracleName, Query
from salal_core.run.questions import Questions
from salal_core.run.records import correction_id

SKIP = -1


@dataclass(frozen=True)
class Answer:
    index: int  # position in the loaded data
    item: int  # the run's stable id of the image: what the journal records
    label: int  # SKIP when the person passed on the item
    round: int
    oracle: OracleName
    time: float
    labeler: str = ""  # the person who answered; "" for the ground truth, a file, the preset
    client_id: str | None = None  # a joined client's id for it: a re-send is journaled once


class AnswerJournal(Protocol):
    """Where answers go before anyone is told they exist (the run store implements it)."""

    def record_answers(self, answers: Sequence[Answer]) -> None: ...

    def record_reverts(
        self, items: Sequence[int], labeler: str = "", client_id: str | None = None
    ) -> None: ...


class CorrectionJournal(AnswerJournal, Protocol):
    questions: Questions  # what the run has asked: a correction goes at its latest round


class ClassOutsideRun(SalalError):
    """An answer of a class the run lacks, refused by the journal (the run store) with nothing
    written: the engine would fail to train on it, and resume would refuse the journal that
    held it. The service tells the labeler so, as it refuses any request it cannot carry out."""

    def __init__(self, label: int, classes: int) -> None:
        super().__init__(
            f"class {label} is not one of this run's {classes} (0..{classes - 1}); the answer "
            "was not saved"
        )
        self.label, self.classes = label, classes


def record_correction(
    journal: CorrectionJournal,
    position: int,
    item: int,
    label: int,
    labeler: str,
    client_id: str | None = None,
) -> None:
    """A label corrected in review: a new answer of `labeler`'s at the run's latest round (the
    journal keeps the old one; the next round trains on it), marked as a correction."""
    round_ = journal.questions.highest_round()
    marked = correction_id(client_id)
    answer = Answer(position, item, label, round_, "human", time.time(), labeler, marked)
    journal.record_answers([answer])


class Oracle(Protocol):
    name: OracleName

    def ask(self, queries: Sequence[Query]) -> None:
        """Hand over items to be answered; returns at once."""

    def collect(self, indices: Sequence[int]) -> dict[int, int]:
        """Block until every item in `indices` is answered or skipped; return index -> label
        for the answered ones. After this, those answers can no longer be undone."""

    def close(self) -> None:
        """No more answers are coming: a blocked `collect` raises OracleClosed."""

    def unanswered(self) -> int:
        """Items asked and not yet answered or skipped."""


class Answering(Protocol):
    """A person's side of the queue, as the labeling screens use it: the person's own
    `HumanOracle`, or a labeler's share of a served run (team/joined.py)."""

    labeler: str

    def current(self) -> Query | None: ...

    def queued(self) -> list[Query]: ...

    def pending_answers(self) -> int: ...

    def answer(self, index: int, label: int, oracle: OracleName = "human") -> Query: ...

    def answer_all(
        self, answers: Sequence[tuple[int, int]], oracle: OracleName = "human"
    ) -> list[Query]: ...

    def skip(self, index: int) -> Query: ...

    def undo(self) -> list[tuple[Query, int]]: ...


class AutoOracle:
    """Answers from the ground truth, at once: the write-up's experiment, reproduced."""

    name: OracleName = "auto"

    def __init__(self, truth: np.ndarray, journal: AnswerJournal | None = None) -> None:
        self.truth = truth
        self.journal = journal
        self._asked: dict[int, Query] = {}

    def ask(self, queries: Sequence[Query]) -> None:
        self._asked.update({q.index: q for q in queries})

    def collect(self, indices: Sequence[int]) -> dict[int, int]:
        now = time.time()
        asked = [self._asked.pop(int(i)) for i in indices]
        answers = [
            Answer(q.index, q.item, int(self.truth[q.index]), q.round, self.name, now)
            for q in asked
        ]
        if self.journal is not None:
            self.journal.record_answers(answers)
        return {a.index: a.label for a in answers}

    def close(self) -> None:
        """Nothing waits on the ground truth, so there is nothing to wake."""

    def unanswered(self) -> int:
        return 0  # the ground truth answers the moment it is asked


class UndoUnavailable(Exception):
    """Nothing to undo, or the engine already trained on the last answer."""


class NotYours(Exception):
    """The image is no longer this labeler's to answer (a lapsed lease, answered by others);
    nothing was written."""


class HumanOracle:
    """A thread-safe queue between the engine (ask/collect) and a person (answer/skip/undo).

    Every answer is written to the journal before `answer` returns, so before the next image
    can be drawn; an undo is a revert record, never a deletion.
    """

    name: OracleName = "human"

    def __init__(self, journal: AnswerJournal | None = None, labeler: str = "") -> None:
        """`labeler`: the person's name in the journal (the login name, from the factory)."""
        self.journal, self.labeler = journal, labeler
        self._cond = threading.Condition()
        self._queue: deque[Query] = deque()  # asked, not yet answered, in asking order
        self._answered: dict[int, tuple[Query, int]] = {}  # answered, not yet collected
        # Answers that can still be undone, in order: the items of each, one or several.
        self._history: list[tuple[int, ...]] = []
        self._closed = False
        self.answered_total = 0

    # ---------------------------------------------------------------- engine side
    def ask(self, queries: Sequence[Query]) -> None:
        with self._cond:
            known = {q.index for q in self._queue} | set(self._answered)
            self._queue.extend(q for q in queries if q.index not in known)
            self._cond.notify_all()

    def collect(self, indices: Sequence[int]) -> dict[int, int]:
        wanted = [int(i) for i in indices]
        with self._cond:
            while not all(i in self._answered for i in wanted):
                if self._closed:
                    raise OracleClosed()
                self._cond.wait(timeout=0.5)
            result: dict[int, int] = {}
            for i in wanted:
                _, label = self._answered.pop(i)
                if label != SKIP:
                    result[i] = label
            # What the engine took can no longer be undone; the rest of an answer still can.
            kept = (tuple(i for i in group if i in self._answered) for group in self._history)
            self._history = [group for group in kept if group]
            return result

    def close(self) -> None:
        """The person quit: wake the engine so that it saves and stops."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    # ---------------------------------------------------------------- person side
    def current(self) -> Query | None:
        with self._cond:
            return self._queue[0] if self._queue else None

    def pending_answers(self) -> int:
        """Answers given but not yet taken by the engine (they count as labeled)."""
        with self._cond:
            return sum(1 for _, label in self._answered.values() if label != SKIP)

    def queued(self) -> list[Query]:
        with self._cond:
            return list(self._queue)

    def unanswered(self) -> int:
        with self._cond:
            return len(self._queue)

    def answer(self, index: int, label: int, oracle: OracleName = "human") -> Query:
        """Label a queued item, the front one or any other (the grid answers tiles in any
        order); durable once this returns."""
        return self.answer_all([(index, label)], oracle)[0]

    def answer_all(
        self, answers: Sequence[tuple[int, int]], oracle: OracleName = "human"
    ) -> list[Query]:
        """Answer several queued items, `(index, label)` each, in one journal write; one undo
        takes them all back. `oracle` names who answered: "accepted" for the model's guesses
        a person took in bulk, so that they are never counted as typed labels."""
        with self._cond:
            queued = {q.index: q for q in self._queue}
            taken = [int(i) for i, _ in answers]
            if not taken or any(i not in queued for i in taken) or len(set(taken)) < len(taken):
                raise ValueError(f"items {taken} are not all waiting for an answer")
            queries = [queued[i] for i in taken]
            now = time.time()
            if self.journal is not None:
                self.journal.record_answers(
                    [
                        Answer(q.index, q.item, label, q.round, oracle, now, self.labeler)
                        for q, (_, label) in zip(queries, answers, strict=True)
                    ]
                )
            gone = set(taken)
            self._queue = deque(q for q in self._queue if q.index not in gone)
            for query, (_, label) in zip(queries, answers, strict=True):
                self._answered[query.index] = (query, label)
                if label != SKIP:
                    self.answered_total += 1
            self._history.append(tuple(taken))
            self._cond.notify_all()
            return queries

    def skip(self, index: int) -> Query:
        """Pass on the item: it goes back to the pool and may be asked about again later."""
        return self.answer(index, SKIP)

    def undo(self) -> list[tuple[Query, int]]:
        """Take back the last answer (all of it, when it was several at once) and put its
        items back in front, in their order; returns each (query, old label)."""
        with self._cond:
            if not self._history:
                raise UndoUnavailable(
                    "nothing to undo: the engine has already trained on your earlier answers"
                    if self.answered_total
                    else "nothing to undo yet"
                )
            undone = [self._answered[i] for i in self._history[-1]]
            if self.journal is not None:  # first: a failed write leaves the answers standing
                self.journal.record_reverts([q.item for q, _ in undone], self.labeler)
            self._history.pop()
            for query, label in undone:
                del self._answered[query.index]
                if label != SKIP:
                    self.answered_total -= 1
            self._queue.extendleft(query for query, _ in reversed(undone))
            self._cond.notify_all()
            return undone
