"""Which run-directory formats this salal opens, and how an older one is brought up to date.

The format is a number in the database's `meta` table, stamped when the run is created; a
database without that stamp is not a run's, and nothing is written to it. A run
of the current format opens for anything; export reads the older ones it understands as they
are; the process that holds a format-3 run migrates it in place, in one transaction, so that
nothing a person labeled under an older salal is lost.
"""

from __future__ import annotations

from pathlib import Path

from salal_core.errors import SalalError
from salal_core.run.database import RunDatabase, not_a_run_database
from salal_core.run.labelers import owner_name

# 3: items have content digests; journal and queue name items, not positions.
# 4: every journal record names its labeler, and a client's answer id is never counted twice.
FORMAT_VERSION = 4
MIGRATES = (3,)  # opened for work, these go up to FORMAT_VERSION in place (see migrate)
EXPORTABLE_FORMATS = (2, 3, 4)  # export reads these as they are


def settle(db: RunDatabase, run_dir: Path, *, new: bool, read_only: bool, holds_lock: bool) -> int:
    """The format the run opens at: a `new` database is stamped with FORMAT_VERSION; an
    existing one must carry salal's stamp, read before anything is written to it. A format-3
    run is migrated by the process holding it, `read_only` (export) also takes the formats
    it can read as they are; any other format is refused with one line that says what to do."""
    if new:
        with db.transaction() as conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
        return FORMAT_VERSION
    if not db.rows("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"):
        raise not_a_run_database(run_dir, "an SQLite database without salal's format stamp")
    row = db.rows("SELECT value FROM meta WHERE key='format'")
    found = int(row[0][0]) if row and str(row[0][0]).isdigit() else None
    if found == FORMAT_VERSION or (read_only and found in EXPORTABLE_FORMATS):
        return found
    if found in MIGRATES:  # only the process holding the run may rewrite it
        if not holds_lock:
            return found
        migrate(db, run_dir)
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


def migrate(db: RunDatabase, run_dir: Path) -> None:
    """Format 3 to 4 in one transaction: the journal gains its labeler and client id
    columns. A person's answers in a format-3 run were its owner's, so they name them."""
    owner = owner_name(run_dir / "salal.db")
    with db.transaction() as conn:
        conn.execute("ALTER TABLE journal ADD COLUMN labeler TEXT NOT NULL DEFAULT ''")
        conn.execute("ALTER TABLE journal ADD COLUMN client_id TEXT")
        conn.execute(
            "UPDATE journal SET labeler=? WHERE oracle IN ('human', 'accepted') "
            "OR (kind='revert' AND oracle IS NULL)",
            (owner,),
        )
        conn.execute("UPDATE meta SET value=? WHERE key='format'", (str(FORMAT_VERSION),))
