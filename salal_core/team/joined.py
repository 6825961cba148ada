"""A labeler's share of a served run, as the labeling screens use a person's own queue.

The images are the ones the service leased to this labeler; an answer returns once the
service has journaled it, as `HumanOracle.answer` does once it is on disk; undo takes back
this labeler's last answer only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from salal_core.events import LabelsAdded, OracleName, Query
from salal_core.run.oracle import SKIP, NotYours, UndoUnavailable
from salal_core.team.client import Refusal, ServiceClient


class JoinedOracle:
    def __init__(self, client: ServiceClient) -> None:
        self.client = client
        self.labeler = client.name
        self._lock = threading.Lock()
        self._waiting: set[int] = set()  # our answers' positions, until the engine takes them
        self._seen: dict[int, Query] = {}  # every image leased to us, by position

    def current(self) -> Query | None:
        queued = self.client.queued()
        return queued[0] if queued else None

    def queued(self) -> list[Query]:
        return self.client.queued()

    def pending_answers(self) -> int:
        with self._lock:
            return len(self._waiting)

    def taken(self, event: LabelsAdded) -> None:
        """The engine trained on these: they no longer count as waiting."""
        with self._lock:
            self._waiting -= set(event.indices)

    def answer(self, index: int, label: int, oracle: OracleName = "human") -> Query:
        return self.answer_all([(index, label)], oracle)[0]

    def answer_all(
        self, answers: Sequence[tuple[int, int]], oracle: OracleName = "human"
    ) -> list[Query]:
        if oracle not in ("human", "accepted"):
            raise ValueError(f"a labeler answers as a person, not as {oracle!r}")
        taken = [int(i) for i, _ in answers]
        with self._lock:
            self._seen.update((q.index, q) for q in self.client.queued())
            known = dict(self._seen)
        if not taken or any(i not in known for i in taken) or len(set(taken)) < len(taken):
            raise ValueError(f"items {taken} are not all waiting for an answer")
        # An image whose lease lapsed is sent all the same: the service takes it if it still
        # wants an answer, and says so in one line if not.
        queries = [known[i] for i in taken]
        given = [(q.item, int(label)) for q, (_, label) in zip(queries, answers, strict=True)]
        try:
            self.client.give(given, oracle)  # journaled by the service when it returns
        except Refusal as exc:
            raise NotYours(str(exc)) from None
        labeled = [q.index for q, (_, label) in zip(queries, given, strict=True) if label != SKIP]
        with self._lock:
            self._waiting |= set(labeled)
        return queries

    def skip(self, index: int) -> Query:
        return self.answer(index, SKIP)

    def undo(self) -> list[tuple[Query, int]]:
        try:
            undone = self.client.take_back()
        except Refusal as exc:
            raise UndoUnavailable(str(exc)) from None
        with self._lock:
            self._waiting -= {q.index for q, _ in undone}
        return undone
