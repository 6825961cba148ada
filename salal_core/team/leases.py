"""The run's queue shared by several labelers: the engine's oracle on one side, leases on the
other.

The engine asks and collects as it does of one person (run/oracle.py). Each queued image is
leased to one labeler at a time (to `overlap` of them at most, with `--overlap K`), and a
lease returns to the queue when its labeler leaves or sits idle past the lease time. The
first label an image gets goes to the engine at once; the rest are journaled for the majority
(run/consensus.py). A skip passes the image on to somebody else; once K labelers have passed
on it, the engine hears it was skipped and may ask again later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from salal_core.errors import OracleClosed
from salal_core.events import OracleName, Query
from salal_core.run.oracle import SKIP, Answer, CorrectionJournal, record_correction
from salal_core.team.answers import ImageAnswers
from salal_core.team.rebuild import AskedJournal, unfinished

PER_LABELER = 6  # images leased ahead to each labeler: the next ones are always there


class TeamJournal(CorrectionJournal, AskedJournal, Protocol):
    def known_client_ids(self, labeler: str, client_ids: Sequence[str]) -> set[str]:
        """Which of these answer ids of `labeler` the journal holds already."""


class LeaseError(Exception):
    """A request that cannot be carried out (an image not open to this labeler, nothing to
    undo); its message is the one line the labeler sees."""


@dataclass(frozen=True)
class Undone:
    query: Query
    label: int


class TeamQueue:
    """Thread-safe: the engine's thread, each connection's thread and the lease clock."""

    name: OracleName = "human"

    def __init__(
        self,
        journal: TeamJournal,
        overlap: int = 1,
        lease_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal, self.overlap, self.lease_seconds = journal, max(1, overlap), lease_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._order: list[int] = []  # asked positions, in asking order, until fully answered
        self._queries: dict[int, Query] = {}
        self._by_item: dict[int, int] = {}
        self._leases: dict[str, list[int]] = {}  # labeler -> leased positions, in order
        self._last_seen: dict[str, float] = {}
        self._away: set[str] = set()  # leases lapsed: none again until they act
        self._answers = ImageAnswers(self.overlap)  # each image's answers, the engine's one
        self._history: dict[str, list[tuple[int, ...]]] = {}  # each labeler's undoable answers
        self._closed = False

    # ---------------------------------------------------------------- engine side
    def ask(self, queries: Sequence[Query]) -> None:
        with self._cond:
            for q in queries:
                if q.index in self._queries and q.index not in self._answers.collected:
                    continue
                self._answers.ask(q.index)  # skipped earlier, asked again: a new question
                self._queries[q.index], self._by_item[q.item] = q, q.index
                self._order.append(q.index)
            self._cond.notify_all()

    def rebuild(self, position_of: Callable[[int], int | None]) -> None:
        """A restarted service: the images that still want answers, with the answers the
        journal holds for them (rebuild.py), once `position_of` knows the loaded images."""
        with self._cond:
            for image in unfinished(self.journal, self.overlap, position_of):
                i = image.query.index
                if i in self._queries:
                    continue
                self._queries[i], self._by_item[image.query.item] = image.query, i
                self._order.append(i)
                self._answers.restore(i, image.answers, image.taken)
            self._cond.notify_all()

    def collect(self, indices: Sequence[int]) -> dict[int, int]:
        wanted = [int(i) for i in indices]
        with self._cond:
            while not all(self._answers.ready(i) for i in wanted):
                if self._closed:
                    raise OracleClosed()
                self._cond.wait(timeout=0.5)
            result = {}
            for i in wanted:
                label = self._answers.collect(i)
                if label != SKIP:
                    result[i] = label
            for labeler, groups in self._history.items():  # trained on: no longer undoable
                kept = (tuple(i for i in g if i not in self._answers.collected) for g in groups)
                self._history[labeler] = [g for g in kept if g]
            self._prune()
            return result

    def _prune(self) -> None:
        """Images the engine has and that want no more answers leave the asking order."""
        self._order = [i for i in self._order if self._answers.wants_more(i)]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def unanswered(self) -> int:
        """Asked images the engine has no answer for yet."""
        with self._cond:
            answers = self._answers
            return sum(1 for i in self._order if not (answers.ready(i) or i in answers.collected))

    def waiting_labels(self) -> int:
        """Images somebody labeled that the engine has not reported taking yet."""
        with self._cond:
            return self._answers.waiting_labels()

    def reported(self) -> None:
        """The engine reported the labels it took (LabelsAdded): they are its count now."""
        with self._cond:
            self._answers.reported()

    # ---------------------------------------------------------------- labeler side
    def lease(self, labeler: str, count: int = PER_LABELER) -> list[Query]:
        """Lease `labeler` images until they hold `count`; returns the new ones, in order."""
        with self._cond:
            if labeler in self._away:
                return []
            self._last_seen.setdefault(labeler, self._clock())
            held = self._leases.setdefault(labeler, [])
            new: list[Query] = []
            for i in self._order:
                if len(held) >= count:
                    break
                if self._open_to(i, labeler) and i not in held:
                    held.append(i)
                    new.append(self._queries[i])
            return new

    def _open_to(self, i: int, labeler: str) -> bool:
        """Whether `labeler` may be asked image `i` now: they have not answered it, and fewer
        than `overlap` answers and other labelers' leases are on it."""
        responses = self._answers.of(i)
        if labeler in responses or len(responses) >= self.overlap:
            return False
        others = sum(i in held for who, held in self._leases.items() if who != labeler)
        return len(responses) + others < self.overlap

    def leased(self, labeler: str) -> list[Query]:
        with self._cond:
            return [self._queries[i] for i in self._leases.get(labeler, [])]

    def give(
        self,
        labeler: str,
        client_id: str,
        answers: Sequence[tuple[int, int]],
        oracle: OracleName = "human",
    ) -> None:
        """Journal `labeler`'s answers `(item, label)` in one write, then count them. An
        image can be answered by whoever holds it, or by anyone while it still wants answers
        (a lapsed lease: the labeler was only slow)."""
        with self._cond:
            if self._closed:
                raise LeaseError("the run has finished; your answers so far are saved")
            self._seen(labeler)
            ids = [f"{client_id}:{item}" for item, _ in answers]
            if ids and self.journal.known_client_ids(labeler, ids) == set(ids):
                return  # a re-send of answers journaled before the connection dropped
            positions = []
            for item, _ in answers:
                i = self._by_item.get(item)
                held = i is not None and i in self._leases.get(labeler, [])
                if i is None or not (held or self._open_to(i, labeler)):
                    raise LeaseError(f"image {item} is not waiting for your answer")
                positions.append(i)
            if len(set(positions)) < len(positions) or not positions:
                raise LeaseError("each image is answered once")
            now = time.time()
            rows = [
                (i, item, label, row_id)
                for i, (item, label), row_id in zip(positions, answers, ids, strict=True)
            ]
            self.journal.record_answers(
                [
                    Answer(i, item, label, self._queries[i].round, oracle, now, labeler, row_id)
                    for i, item, label, row_id in rows
                ]
            )
            for i, (_, label) in zip(positions, answers, strict=True):
                self._answers.add(i, labeler, label)
                self._drop_lease(labeler, i)
            undoable = tuple(i for i in positions if i not in self._answers.collected)
            if undoable:
                self._history.setdefault(labeler, []).append(undoable)
            else:  # answers after the engine trained on the image: nothing before is undoable
                self._history[labeler] = []
                self._prune()
            self._cond.notify_all()

    def _drop_lease(self, labeler: str, i: int) -> None:
        held = self._leases.get(labeler, [])
        if i in held:
            held.remove(i)

    def take_back(self, labeler: str, client_id: str) -> list[Undone]:
        """Undo `labeler`'s last answer, and only theirs: the images go back in front of
        their own queue. Refused once the engine has trained on it."""
        with self._cond:
            if self._closed:
                raise LeaseError("the run has finished; nothing can be undone now")
            self._seen(labeler)
            groups = self._history.get(labeler, [])
            if not groups:
                raise LeaseError("nothing to undo: the engine has already trained on your answers")
            group = groups[-1]
            undone = [Undone(self._queries[i], self._answers.of(i)[labeler]) for i in group]
            self.journal.record_reverts([u.query.item for u in undone], labeler, client_id)
            groups.pop()
            for i in group:
                self._answers.take_back(i, labeler)
            held = self._leases.setdefault(labeler, [])
            held[:0] = [i for i in group if i not in held]
            self._cond.notify_all()
            return undone

    def correct(self, labeler: str, client_id: str, item: int, position: int, label: int) -> None:
        """A label corrected in review: journaled as a new answer of `labeler`'s (the history
        keeps the old one; the next round trains on it). A re-send is journaled once."""
        with self._cond:
            self._seen(labeler)
            record_correction(self.journal, position, item, label, labeler, f"{client_id}:{item}")

    def release(self, labeler: str) -> list[int]:
        """The labeler left: their leased images return to the queue; returns their items."""
        with self._cond:
            gone = self._leases.pop(labeler, [])
            self._cond.notify_all()
            return [self._queries[i].item for i in gone]

    def expire(self) -> dict[str, list[int]]:
        """Leases of labelers idle past the lease time return to the queue: labeler -> items."""
        with self._cond:
            now = self._clock()
            idle = [
                who
                for who, held in self._leases.items()
                if held and now - self._last_seen.get(who, now) > self.lease_seconds
            ]
            self._away.update(idle)
            return {who: self.release(who) for who in idle}

    @property
    def asked_any(self) -> bool:
        """Whether the queue holds any question yet: the engine asked, or a restarted
        service rebuilt its queue from the journal once the images loaded."""
        with self._cond:
            return bool(self._queries)

    def touch(self, labeler: str) -> None:
        """The labeler did something (joined, asked for an image): they are here."""
        with self._cond:
            self._seen(labeler)

    def _seen(self, labeler: str) -> None:
        self._last_seen[labeler] = self._clock()
        self._away.discard(labeler)

    def query_of(self, item: int) -> Query | None:
        with self._cond:
            i = self._by_item.get(item)
            return None if i is None else self._queries[i]
