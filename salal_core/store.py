"""The run directory: everything a run knows, on disk, so that it can be resumed and audited.

    RUN_DIR/
      config.toml          the configuration as used
      salal.db             SQLite (WAL): label journal, query queue, per-epoch metrics
      checkpoints/*.pt     one per round, written atomically (state dicts only)
      summary.json         the learning curve: labeled count -> test accuracy
      .lock                held while a process works on the run

The label journal is append-only: an answer is a row, an undo is a revert row. The labeled set
is whatever replaying it gives, so nothing acknowledged is ever lost or counted twice.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, load_toml, save_toml
from .errors import SalalError
from .events import EpochEnded, Event, Query, RoundEnded
from .oracle import SKIP, Answer

FORMAT_VERSION = 2  # 2: the queue remembers the order items were asked in

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip', 'revert')),
    idx INTEGER NOT NULL,
    label INTEGER,
    round INTEGER,
    oracle TEXT,
    time REAL NOT NULL
);
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
CREATE TABLE IF NOT EXISTS items (idx INTEGER PRIMARY KEY, source_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (label INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS curve (
    round INTEGER PRIMARY KEY, labeled INTEGER NOT NULL, test_accuracy REAL, time REAL NOT NULL
);
"""


@dataclass(frozen=True)
class LabelRecord:
    index: int
    label: int
    round: int
    oracle: str
    time: float


def _disk_full(exc: OSError | sqlite3.Error) -> SalalError:
    return SalalError(
        f"could not save to the run directory ({exc}); free some disk space and resume with "
        "--resume (every answer acknowledged so far is on disk)"
    )


class RunStore:
    def __init__(self, run_dir: Path, *, create: bool, lock: bool = True) -> None:
        self.dir = Path(run_dir)
        existing = (self.dir / "salal.db").exists()
        if create:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SalalError(f"cannot create run directory {self.dir} ({exc})") from None
        elif not existing:
            raise SalalError(f"{self.dir} is not a salal run directory (no salal.db)")
        self._lock_file = self._take_lock() if lock else None
        self.checkpoints = self.dir / "checkpoints"
        self.checkpoints.mkdir(exist_ok=True)
        self._mutex = threading.Lock()
        self._db = sqlite3.connect(
            self.dir / "salal.db", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
        self._db.executescript(SCHEMA)
        self._check_version(create)
        if create and existing:
            self._take_over_if_empty()

    def _take_lock(self):  # noqa: ANN202
        f = (self.dir / ".lock").open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            f.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise SalalError(
                    f"{self.dir} is in use by another salal process; wait for it or stop it"
                ) from None
            raise
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        return f

    def _check_version(self, create: bool) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None and create:
            self._db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
        elif row is None or int(row[0]) != FORMAT_VERSION:
            found = row[0] if row else "unknown"
            self.close()
            raise SalalError(
                f"{self.dir} was written by an incompatible salal (format {found}, this one reads "
                f"{FORMAT_VERSION}); use a matching salal or start a new run"
            )

    def _take_over_if_empty(self) -> None:
        """A new run may reuse a directory whose run saved nothing worth keeping (it failed on
        a mistyped --data, or was quit while loading): no answer, no checkpoint. Anything more
        is refused, so a new run can never write over labels or a trained model."""
        answered = self._db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        if answered or any(self.checkpoints.glob("*.pt")):
            self.close()
            raise SalalError(
                f"{self.dir} already holds a run; pass --resume {self.dir} or another --out"
            )
        with self._transaction() as db:
            for table in ("queue", "metrics", "items", "classes", "curve"):
                db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            if self._lock_file is not None:
                self._lock_file.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """All of the block's writes or none; a failure to save becomes the one-line error."""
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, (sqlite3.OperationalError, OSError)):  # full, I/O error
                    raise _disk_full(exc) from None
                raise  # a constraint broken is a bug: its traceback, not advice about disks

    def _write(self, sql: str, rows: Sequence[tuple]) -> None:
        with self._transaction() as db:
            db.executemany(sql, rows)

    # ---------------------------------------------------------------- config
    def save_config(self, config: RunConfig) -> None:
        try:
            tmp = self.dir / "config.toml.tmp"
            save_toml(config, tmp)
            os.replace(tmp, self.dir / "config.toml")
        except OSError as exc:
            raise _disk_full(exc) from None

    def load_config(self) -> RunConfig:
        return load_toml(self.dir / "config.toml")

    # ---------------------------------------------------------------- items and classes
    def save_items(self, ids: Sequence[str], class_names: Sequence[str]) -> None:
        """Where each global index came from, so export needs no dataset."""
        self._write("INSERT OR REPLACE INTO items VALUES (?, ?)", list(enumerate(ids)))
        self._write("INSERT OR REPLACE INTO classes VALUES (?, ?)", list(enumerate(class_names)))

    def items(self) -> list[str]:
        with self._mutex:
            return [r[0] for r in self._db.execute("SELECT source_id FROM items ORDER BY idx")]

    def class_names(self) -> list[str]:
        with self._mutex:
            return [r[0] for r in self._db.execute("SELECT name FROM classes ORDER BY label")]

    # ---------------------------------------------------------------- label journal
    def record_answers(self, answers: Sequence[Answer]) -> None:
        self._write(
            "INSERT INTO journal (kind, idx, label, round, oracle, time) VALUES (?,?,?,?,?,?)",
            [
                (
                    "skip" if a.label == SKIP else "label",
                    a.index,
                    a.label,
                    a.round,
                    a.oracle,
                    a.time,
                )
                for a in answers
            ],
        )

    def record_revert(self, index: int) -> None:
        self._write(
            "INSERT INTO journal (kind, idx, time) VALUES ('revert', ?, ?)", [(index, time.time())]
        )

    def labels(self) -> dict[int, LabelRecord]:
        """Replay the journal: the current label of every labeled item."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT kind, idx, label, round, oracle, time FROM journal ORDER BY seq"
            ).fetchall()
        current: dict[int, LabelRecord] = {}
        last_kind: dict[int, str] = {}
        for kind, idx, label, round_, oracle, t in rows:
            if kind == "label":
                current[idx] = LabelRecord(idx, label, round_, oracle, t)
            elif kind == "revert" and last_kind.get(idx) == "label":
                current.pop(idx, None)
            last_kind[idx] = kind
        return current

    # ---------------------------------------------------------------- query queue
    def save_queries(self, queries: Sequence[Query]) -> None:
        """Asked items, numbered in asking order (the item's own index is its key, and an item
        skipped and asked again later moves to the back); the index on `asked` keeps each
        row's MAX a lookup, not a scan of every item ever asked."""
        self._write(
            "INSERT OR REPLACE INTO queue VALUES "
            "(?,?,?,?,?,0,(SELECT COALESCE(MAX(asked), 0) + 1 FROM queue))",
            [
                (q.index, q.round, q.score, q.predicted, json.dumps(q.probabilities))
                for q in queries
            ],
        )

    def mark_consumed(self, indices: Sequence[int]) -> None:
        self._write("UPDATE queue SET consumed=1 WHERE idx=?", [(int(i),) for i in indices])

    def open_queries(self) -> list[Query]:
        """Queries asked but not consumed, in the order they were asked."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT idx, score, predicted, probabilities, round FROM queue "
                "WHERE consumed=0 ORDER BY asked"
            ).fetchall()
        return [Query(i, s, p, tuple(json.loads(pr)), r) for i, s, p, pr, r in rows]

    # ---------------------------------------------------------------- metrics
    def on_event(self, event: Event) -> None:
        """An emit sink: epochs and rounds go to the database as they happen."""
        if isinstance(event, EpochEnded):
            self._write(
                "INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        time.time(),
                        event.phase,
                        event.round,
                        event.epoch,
                        event.loss,
                        event.train_accuracy,
                        event.test_loss,
                        event.test_accuracy,
                        event.images_per_second,
                    )
                ],
            )
        elif isinstance(event, RoundEnded):
            self._write(
                "INSERT OR REPLACE INTO curve VALUES (?,?,?,?)",
                [(event.round, event.labeled, event.test_accuracy, time.time())],
            )

    def metrics(self, phase: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM metrics" + (" WHERE phase=?" if phase else "") + " ORDER BY rowid"
        with self._mutex:
            cur = self._db.execute(sql, (phase,) if phase else ())
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, name: str, payload: dict[str, Any]) -> Path:
        """Write atomically: temporary file, fsync, rename, fsync the folder."""
        path = self.checkpoints / f"{name}.pt"
        tmp = path.with_suffix(".pt.tmp")
        try:
            # Serialise in memory first: torch.save reports a failed write (a full disk) as a
            # RuntimeError from its zip writer, while a plain write raises OSError.
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            with tmp.open("wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(self.checkpoints, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _disk_full(exc) from None
        return path

    def load_checkpoint(self, prefix: str) -> tuple[dict[str, Any], Path] | tuple[None, None]:
        """The newest readable checkpoint whose name starts with `prefix`; a torn or unreadable
        one is skipped in favour of the one before it."""
        for path in sorted(self.checkpoints.glob(f"{prefix}*.pt"), reverse=True):
            try:
                return torch.load(path, map_location="cpu", weights_only=True), path
            except Exception:  # torn write, bad zip, unpickling refusal: all mean "try older"
                continue
        return None, None

    # ---------------------------------------------------------------- summary
    def write_summary(self, summary: dict[str, Any]) -> None:
        try:
            tmp = self.dir / "summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=2))
            os.replace(tmp, self.dir / "summary.json")
        except OSError as exc:
            raise _disk_full(exc) from None
