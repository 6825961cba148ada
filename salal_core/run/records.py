"""The run directory's database: its tables, and their rows typed as the store hands them out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip', 'revert')),
    idx INTEGER NOT NULL,
    label INTEGER,
    round INTEGER,
    oracle TEXT,
    time REAL NOT NULL,
    labeler TEXT NOT NULL DEFAULT '',
    client_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS journal_client ON journal (labeler, client_id)
    WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue (
    idx INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    score REAL NOT NULL,
    predicted INTEGER NOT NULL,
    probabilities TEXT NOT NULL,
    consumed INTEGER NOT NULL DEFAULT 0,
    asked INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_asked ON queue (asked);
CREATE TABLE IF NOT EXISTS metrics (
    time REAL NOT NULL, phase TEXT NOT NULL, round INTEGER NOT NULL, epoch INTEGER NOT NULL,
    loss REAL, train_accuracy REAL, test_loss REAL, test_accuracy REAL, images_per_second REAL
);
CREATE TABLE IF NOT EXISTS items (
    idx INTEGER PRIMARY KEY, source_id TEXT NOT NULL, digest TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS classes (label INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS curve (
    round INTEGER PRIMARY KEY, labeled INTEGER NOT NULL, test_accuracy REAL, time REAL NOT NULL
);
"""


@dataclass(frozen=True)
class LabelRecord:
    """An item's current label, as replaying the journal gives it."""

    item: int
    label: int
    round: int
    oracle: str
    time: float
    labeler: str  # the person who gave it ("" for the ground truth, a file, the preset)


CORRECTION_MARK = "review:"  # how a correction's client id starts in the journal


def correction_id(client_id: str | None) -> str:
    """The journal's client id for a label corrected in review: marked, so that a queue
    rebuilt from the journal leaves corrections out as the live one does (team/rebuild.py),
    and unique where no client gave one (a review of a stopped run's files)."""
    return f"{CORRECTION_MARK}{client_id or uuid.uuid4().hex}"


@dataclass(frozen=True)
class JournalRow:
    """One journal record as written, for the checks resume makes before trusting it."""

    seq: int
    kind: str
    item: int
    label: int | None
    round: int | None
    oracle: str | None
    time: float
    labeler: str
    client_id: str | None = None  # a joined client's id for it, or a correction's mark

    @property
    def correction(self) -> bool:
        """Whether this is a label corrected in review, not an answer to a question."""
        return self.client_id is not None and self.client_id.startswith(CORRECTION_MARK)


@dataclass(frozen=True)
class StoredItem:
    item: int
    source_id: str  # where it was read from last (a path in the source, or "batch:row")
    digest: str


@dataclass(frozen=True)
class QueuedItem:
    """An item asked about, by item id (positions are the engine's)."""

    item: int
    score: float
    predicted: int
    probabilities: tuple[float, ...]
    round: int
    asked: int  # its place in the run's asking order, counted from 1


@dataclass(frozen=True)
class MetricRow:
    """One epoch's figures as the run recorded them (the metrics table); None where the
    phase has no such figure."""

    time: float
    phase: str
    round: int
    epoch: int
    loss: float | None
    train_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None
    images_per_second: float | None
