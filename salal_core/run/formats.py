"""Which run-directory formats this salal opens, and how an older one is brought up to date.

The format is a number in the database's `meta` table, stamped when the run is created. A run
of the current format opens for anything; export reads the older ones it understands as they
are; the process that holds a format-3 run migrates it in place, in one transaction, so that
nothing a person labeled under an older salal is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from salal_core.errors import SalalError
from salal_core.team.labelers import owner_name

# 3: items have content digests; journal and queue name items, not positions.
# 4: every journal record names its labeler, and a client's answer id is never counted twice.
FORMAT_VERSION = 4
MIGRATES = (3,)  # opened for work, these go up to FORMAT_VERSION in place (see migrate)
EXPORTABLE_FORMATS = (2, 3, 4)  # export reads these as they are

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]


def settle(
    db: sqlite3.Connection,
    run_dir: Path,
    *,
    create: bool,
    read_only: bool,
    holds_lock: bool,
    transaction: Transaction,
) -> int:
    """The format the run opens at: a new run is stamped with FORMAT_VERSION, a format-3 run
    is migrated by the process holding it, `read_only` (export) also takes the formats it can
    read as they are; any other format is refused with one line that says what to do."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    if row is None and create:
        db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
        return FORMAT_VERSION
    found = int(row[0]) if row is not None and str(row[0]).isdigit() else None
    if found == FORMAT_VERSION or (read_only and found in EXPORTABLE_FORMATS):
        return found
    if found in MIGRATES:  # only the process holding the run may rewrite it
        if not holds_lock:
            return found
        migrate(run_dir, transaction)
        return FORMAT_VERSION
    if found in EXPORTABLE_FORMATS:
        raise SalalError(
            f"{run_dir} was written by an older salal (format {found}), whose labels are "
            f"kept by position, not by image; export them with salal-core export "
            f"{run_dir}, and start a new run"
        )
    raise SalalError(
        f"{run_dir} was written by an incompatible salal (format {found or 'unknown'}, this "
        f"one reads {FORMAT_VERSION}); use a matching salal or start a new run"
    )


def migrate(run_dir: Path, transaction: Transaction) -> None:
    """Format 3 to 4 in one transaction: the journal gains its labeler and client id
    columns. A person's answers in a format-3 run were its owner's, so they name them."""
    owner = owner_name(run_dir / "salal.db")
    with transaction() as db:
        db.execute("ALTER TABLE journal ADD COLUMN labeler TEXT NOT NULL DEFAULT ''")
        db.execute("ALTER TABLE journal ADD COLUMN client_id TEXT")
        db.execute(
            "UPDATE journal SET labeler=? WHERE oracle IN ('human', 'accepted') "
            "OR (kind='revert' AND oracle IS NULL)",
            (owner,),
        )
        db.execute("UPDATE meta SET value=? WHERE key='format'", (str(FORMAT_VERSION),))
