"""The run's questions: the queue table of salal.db, every image asked about in the order it
was asked, and whether the answer to it has been taken (consumed); and how many labelers
answer each (`serve --overlap K`), from which question on. The run store holds one
(`RunStore.questions`) on its database; the tables themselves are records.py's."""

from __future__ import annotations

import json
from collections.abc import Sequence

from salal_core.events import Query
from salal_core.run.database import RunDatabase
from salal_core.run.records import QueuedItem


class Questions:
    def __init__(self, db: RunDatabase) -> None:
        self._db = db

    def save(self, queries: Sequence[Query]) -> None:
        """Asked items, numbered in asking order (the item is the key, and an item skipped and
        asked again later moves to the back); the index on `asked` keeps each row's MAX a
        lookup, not a scan of every item ever asked."""
        self._db.write(
            "INSERT OR REPLACE INTO queue VALUES "
            "(?,?,?,?,?,0,(SELECT COALESCE(MAX(asked), 0) + 1 FROM queue))",
            [(q.item, q.round, q.score, q.predicted, json.dumps(q.probabilities)) for q in queries],
        )

    def mark_consumed(self, items: Sequence[int]) -> None:
        """The answers to these items are taken: a resumed run does not ask them again."""
        self._db.write("UPDATE queue SET consumed=1 WHERE idx=?", [(int(i),) for i in items])

    def open(self) -> list[QueuedItem]:
        """Items asked about but not consumed, in the order they were asked."""
        return self._queued("WHERE consumed=0")

    def asked(self) -> list[QueuedItem]:
        """Every item asked about, answered since or not, in the order they were asked."""
        return self._queued("")

    def _queued(self, where: str) -> list[QueuedItem]:
        rows = self._db.rows(
            "SELECT idx, score, predicted, probabilities, round, asked FROM queue "
            f"{where} ORDER BY asked"
        )
        return [QueuedItem(i, s, p, tuple(json.loads(pr)), r, a) for i, s, p, pr, r, a in rows]

    @property
    def overlap(self) -> int:
        """How many labelers answer each image (`serve --overlap K`; 1 unless set)."""
        row = self._db.rows("SELECT value FROM meta WHERE key='overlap'")
        return int(row[0][0]) if row else 1

    @property
    def overlap_from(self) -> int:
        """The place in the asking order after which the overlap was in force: the questions
        asked before it (a run labeled alone, then served with --overlap 2) want no more
        answers. 0: from the first question."""
        row = self._db.rows("SELECT value FROM meta WHERE key='overlap_from'")
        return int(row[0][0]) if row else 0

    def set_overlap(self, overlap: int) -> None:
        """Keep `overlap` in the run; a change applies to the questions asked from now on."""
        if overlap == self.overlap:
            return
        with self._db.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('overlap', ?)", (str(overlap),))
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES "
                "('overlap_from', (SELECT COALESCE(MAX(asked), 0) FROM queue))"
            )

    def highest_round(self) -> int:
        """The latest round the run has asked about (0 before any question: the initial set)."""
        return int(self._db.rows("SELECT COALESCE(MAX(round), 0) FROM queue")[0][0])
