"""The run directory: everything a run knows, on disk, so that it can be resumed and audited.

    RUN_DIR/
      config.toml          the configuration as used
      salal.db             SQLite (WAL): items, label journal, query queue, per-epoch metrics
      checkpoints/*.pt     pretraining, then one per round (checkpoint.py), written atomically
      summary.json         the learning curve: labeled count -> test accuracy
      .lock                held while a process works on the run
      salal.sock           the run's service, while one runs (team/endpoint.py)
      engine.log, service.log   the engine's output; a private service's lines

Items are the run's images, numbered once and for good (the `idx` of every other table) and
known by their content digest, so a label stays on its image whatever happens to positions.
The label journal is append-only: an answer is a row, an undo is a revert row. The labeled set
is whatever replaying it gives, so nothing acknowledged is ever lost or counted twice.

Every read and write of the database lives here (the row types and schema in records.py), or
for the queue table, in `questions` (questions.py), so no other module knows its tables; the
connection, which formats open, and the lock, are database.py, formats.py and lock.py. The
directory and salal's files in it are its owner's alone (access.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from salal_core import json_text
from salal_core.config import RunConfig
from salal_core.config_io import dumps_toml, load_toml, to_dict
from salal_core.errors import SalalError
from salal_core.events import EpochEnded, Event, RoundEnded
from salal_core.files import atomic_write_text
from salal_core.run import access, checkpoint, consensus, formats
from salal_core.run import lock as run_lock
from salal_core.run.database import DB_NAME, RunDatabase, check_header
from salal_core.run.oracle import SKIP, Answer, ClassOutsideRun
from salal_core.run.questions import Questions
from salal_core.run.records import (
    SCHEMA,
    JournalRow,
    LabelRecord,
    MetricRow,
    StoredItem,
)


class RunStore:
    def __init__(
        self, run_dir: Path, *, create: bool, lock: bool = True, read_only: bool = False
    ) -> None:
        """Open (or with `create`, make) a run directory. `read_only` (export) also accepts
        the older formats it can still read; everything else needs FORMAT_VERSION. Taking
        the lock makes the run private to its owner (access.py)."""
        self.dir = Path(run_dir)
        try:
            new = not (self.dir / DB_NAME).exists()
        except PermissionError:  # another user's run, closed to this one
            raise access.not_shared(self.dir) from None
        if create:
            try:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise SalalError(f"cannot create run directory {self.dir} ({exc})") from None
        elif new:
            raise SalalError(f"{self.dir} is not a salal run directory (no salal.db)")
        if not new:  # before the lock: nothing is written beside a file that is not a run's
            check_header(self.dir)
        self._lock_file = run_lock.take(self.dir) if lock else None
        if self._lock_file is not None:
            try:
                access.restrict(self.dir)
            except SalalError:
                self._release_lock()
                raise
        self.checkpoints = self.dir / "checkpoints"
        try:
            self._db = RunDatabase(self.dir, new=new)
        except BaseException:
            self._release_lock()
            raise
        self.questions = Questions(self._db)  # the queue table: what was asked, in order
        try:
            self.format = formats.settle(
                self._db,
                self.dir,
                new=new,
                read_only=read_only,
                holds_lock=self._lock_file is not None,
            )
            if self.format == formats.FORMAT_VERSION:
                self._db.script(SCHEMA)
            if not read_only:
                self.checkpoints.mkdir(exist_ok=True)
            self._db.created()
        except OSError as exc:  # the checkpoints folder: a full disk, a read-only folder
            self.close()
            raise self._db.cannot_write(exc) from None
        except BaseException:
            self.close()
            raise
        if create and not new:
            self._take_over_if_empty()

    def _take_over_if_empty(self) -> None:
        """A new run may reuse a directory whose run saved nothing worth keeping (it failed on
        a mistyped --data, or was quit while loading): no answer, no checkpoint. Anything more
        is refused, so a new run can never write over labels or a trained model."""
        answered = self._db.rows("SELECT COUNT(*) FROM journal")[0][0]
        if answered or any(self.checkpoints.glob("*.pt")):
            self.close()
            raise SalalError(
                f"{self.dir} already holds a run; pass --resume {self.dir} or another --out"
            )
        with self._db.transaction() as db:
            for table in ("queue", "metrics", "items", "classes", "curve"):
                db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()

    # ---------------------------------------------------------------- files beside the db
    def save_config(self, config: RunConfig) -> None:
        try:
            atomic_write_text(self.dir / "config.toml", dumps_toml(to_dict(config)))
        except OSError as exc:
            raise self._db.cannot_write(exc) from None

    def load_config(self) -> RunConfig:
        return load_toml(self.dir / "config.toml")

    def write_summary(self, summary: dict[str, Any]) -> None:
        try:
            atomic_write_text(self.dir / "summary.json", json_text.dumps(summary, indent=2))
        except OSError as exc:
            raise self._db.cannot_write(exc) from None

    def save_checkpoint(self, name: str, payload: dict[str, Any]) -> Path:
        try:
            return checkpoint.save(self.checkpoints, name, payload)
        except OSError as exc:
            raise self._db.cannot_write(exc) from None

    def newest_round(self) -> checkpoint.RoundCheckpoint | None:
        """The newest readable round checkpoint, typed and version-checked; None before one."""
        return checkpoint.newest_round(self.checkpoints)

    # ---------------------------------------------------------------- items and classes
    def save_items(self, items: Sequence[StoredItem]) -> None:
        """Add items, or record where a known one is read from now (a renamed file)."""
        self._db.write(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
            [(i.item, i.source_id, i.digest) for i in items],
        )

    def items(self) -> list[StoredItem]:
        return [StoredItem(*r) for r in self._db.rows("SELECT * FROM items ORDER BY idx")]

    def sources(self) -> dict[int, str]:
        """Item id -> where it was read from; every format export reads has these."""
        return {int(i): str(s) for i, s in self._db.rows("SELECT idx, source_id FROM items")}

    def save_classes(self, names: Sequence[str]) -> None:
        self._db.write("INSERT OR REPLACE INTO classes VALUES (?, ?)", list(enumerate(names)))

    def class_names(self) -> list[str]:
        return [r[0] for r in self._db.rows("SELECT name FROM classes ORDER BY label")]

    # ---------------------------------------------------------------- label journal
    def record_answers(self, answers: Sequence[Answer]) -> None:
        """Journal answers in one transaction. An answer whose (labeler, client id) is
        already there is a client's re-send after a dropped connection: it is not added. A
        class the run lacks is refused (ClassOutsideRun), nothing written."""
        self._check_classes(answers)
        self._db.write(
            "INSERT INTO journal (kind, idx, label, round, oracle, time, labeler, client_id) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (labeler, client_id) "
            "WHERE client_id IS NOT NULL DO NOTHING",
            [
                (
                    "skip" if a.label == SKIP else "label",
                    a.item,
                    a.label,
                    a.round,
                    a.oracle,
                    a.time,
                    a.labeler,
                    a.client_id,
                )
                for a in answers
            ],
        )

    def _check_classes(self, answers: Sequence[Answer]) -> None:
        """Every label names one of the run's stored classes (none are stored before the data
        first loads, and then there is nothing to check against): the one check, wherever an
        answer comes from."""
        labels = sorted({a.label for a in answers if a.label != SKIP})
        classes = int(self._db.rows("SELECT COUNT(*) FROM classes")[0][0]) if labels else 0
        outside = [label for label in labels if not 0 <= label < classes]
        if classes and outside:
            raise ClassOutsideRun(outside[0], classes)

    def record_reverts(
        self, items: Sequence[int], labeler: str = "", client_id: str | None = None
    ) -> None:
        """Take back `labeler`'s own standing answers on these items."""
        now = time.time()
        self._db.write(
            "INSERT INTO journal (kind, idx, time, labeler, client_id) VALUES "
            "('revert', ?, ?, ?, ?) ON CONFLICT (labeler, client_id) "
            "WHERE client_id IS NOT NULL DO NOTHING",
            [
                (item, now, labeler, None if client_id is None else f"{client_id}:{item}")
                for item in items
            ],
        )

    def known_client_ids(self, labeler: str, client_ids: Sequence[str]) -> set[str]:
        """Which of a labeler's answer ids are journaled already (a client's re-send)."""
        marks = ",".join("?" * len(client_ids))
        rows = self._db.rows(
            f"SELECT client_id FROM journal WHERE labeler=? AND client_id IN ({marks})",
            (labeler, *client_ids),
        )
        return {str(r[0]) for r in rows}

    def journal_rows(self) -> list[JournalRow]:
        current = self.format == formats.FORMAT_VERSION
        labeler, client_id = ("labeler", "client_id") if current else ("''", "NULL")
        return [
            JournalRow(*r)
            for r in self._db.rows(
                f"SELECT seq, kind, idx, label, round, oracle, time, {labeler}, {client_id} "
                "FROM journal ORDER BY seq"
            )
        ]

    def backbone_digest(self) -> str | None:
        """The sha256 of the pretrained weights this run's features came from (None: rotnet,
        or not embedded yet)."""
        row = self._db.rows("SELECT value FROM meta WHERE key='backbone_digest'")
        return str(row[0][0]) if row else None

    def record_backbone_digest(self, digest: str) -> None:
        self._db.write("INSERT OR REPLACE INTO meta VALUES ('backbone_digest', ?)", [(digest,)])

    def votes(self) -> dict[int, list[consensus.Vote]]:
        """Each labeler's standing answer on every answered item (consensus.py)."""
        return consensus.standing_votes(self.journal_rows())

    def labels(self) -> dict[int, LabelRecord]:
        """Replay the journal: the label that counts on every labeled item, by item id."""
        return consensus.current_labels(self.journal_rows(), self.questions.overlap)

    # ---------------------------------------------------------------- rounds
    def last_round(self) -> int:
        """The last round the run finished (0 before the first)."""
        return int(self._db.rows("SELECT COALESCE(MAX(round), 0) FROM curve")[0][0])

    # ---------------------------------------------------------------- metrics
    def on_event(self, event: Event) -> None:
        """An emit sink: epochs and rounds go to the database as they happen."""
        if isinstance(event, EpochEnded):
            self._db.write(
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
            self._db.write(
                "INSERT OR REPLACE INTO curve VALUES (?,?,?,?)",
                [(event.round, event.labeled, event.test_accuracy, time.time())],
            )

    def metrics(self, phase: str | None = None) -> list[MetricRow]:
        """Every epoch recorded, in order; with `phase`, that phase's only."""
        sql = (
            "SELECT time, phase, round, epoch, loss, train_accuracy, test_loss, test_accuracy, "
            "images_per_second FROM metrics"
            + (" WHERE phase=?" if phase else "")
            + " ORDER BY rowid"
        )
        return [MetricRow(*row) for row in self._db.rows(sql, (phase,) if phase else ())]
