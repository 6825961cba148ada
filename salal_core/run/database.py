"""The run's SQLite database, opened defensively.

salal writes only into a database it recognises. A file that is not SQLite (an empty one
included) is refused before it is opened, a damaged one before anything is written to it, and
a damage found later is the same one line, never a traceback. A database that cannot be made
(a full disk, a folder salal may not write in) is one line too, and what this open made of it
is removed, so that the same --out works once there is room.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from salal_core.errors import SalalError

DB_NAME = "salal.db"
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database
# What SQLite calls a file that is not, or is no longer, a whole database.
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def not_a_run_database(run_dir: Path, why: str) -> SalalError:
    return SalalError(
        f"{run_dir / DB_NAME} is not a salal run database ({why}); move it aside or pick "
        "another --out"
    )


def damaged(exc: BaseException) -> bool:
    """Whether SQLite's error says the file is not, or is no longer, a database."""
    return isinstance(exc, sqlite3.DatabaseError) and exc.sqlite_errorname in DAMAGED


def check_header(run_dir: Path) -> None:
    """Refuse a salal.db that is not an SQLite database, read before anything opens it."""
    path = run_dir / DB_NAME
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise SalalError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    if head != SQLITE_HEADER:
        raise not_a_run_database(run_dir, "an empty file" if not head else "not an SQLite file")


class RunDatabase:
    """One connection to RUN_DIR/salal.db, which the store's threads share under a mutex."""

    def __init__(self, run_dir: Path, *, new: bool) -> None:
        """`new`: make the database (no file is there); until `created` is called, a failure
        to write says so and closing removes the half-made file. Otherwise the file must be
        a whole SQLite database, which is checked by reading it."""
        self.run_dir = run_dir
        self._creating = new
        self._mutex = threading.Lock()
        if not new:
            check_header(run_dir)
        try:  # nothing made yet if this fails: nothing to close or remove
            self._conn = sqlite3.connect(
                run_dir / DB_NAME, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self.cannot_write(exc) from None
        try:
            with self._failures():
                if new:
                    self._conn.execute("PRAGMA journal_mode=WAL")  # set once, kept in the file
                else:
                    self._check_whole()
                self._conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
        except BaseException:
            self.close()
            raise

    def _check_whole(self) -> None:
        """Read every page: a truncated or damaged database is refused before it is used."""
        found = self._conn.execute("PRAGMA quick_check").fetchall()
        if found != [("ok",)]:  # "*** in database main ***\nPage 3: ...": the page's line
            raise not_a_run_database(self.run_dir, f"damaged: {str(found[0][0]).splitlines()[-1]}")

    def created(self) -> None:
        """The new database is whole (stamped, its tables made): from now on it is the run's."""
        self._creating = False

    def cannot_write(self, exc: BaseException) -> SalalError:
        """The one line for a write that failed (a full disk, a read-only folder)."""
        if self._creating:
            return SalalError(
                f"could not create a run in {self.run_dir} ({exc}); free some disk space, or "
                "pick another --out"
            )
        return SalalError(
            f"could not save to the run directory ({exc}); free some disk space and resume "
            "with --resume (every answer acknowledged so far is on disk)"
        )

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """A damaged database, or one that cannot be written, becomes its one line."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if damaged(exc):
                raise not_a_run_database(self.run_dir, str(exc)) from None
            if isinstance(exc, sqlite3.OperationalError):  # full, I/O error, read-only
                raise self.cannot_write(exc) from None
            raise  # a constraint broken is a bug: its traceback, not advice about disks
        except OSError as exc:
            raise self.cannot_write(exc) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All of the block's writes or none; a failure to save becomes the one-line error."""
        with self._mutex, self._failures():
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with self.transaction() as db:
            db.executemany(sql, rows)

    def script(self, sql: str) -> None:
        """Statements that make tables and indexes, each idempotent."""
        with self._mutex, self._failures():
            self._conn.executescript(sql)

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._mutex, self._failures():
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the connection; a database left half-made by a failed creation is removed."""
        self._conn.close()
        if self._creating:
            for suffix in ("", "-wal", "-shm", "-journal"):
                (self.run_dir / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
