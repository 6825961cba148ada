"""One process works on a run at a time: an advisory lock on RUN_DIR/.lock, which the
operating system lets go of when the process ends, however it ends, so a crash never leaves a
run locked. The file holds the holder's process id, for a person wondering who has it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import IO

from salal_core.errors import RunInUse, SalalError
from salal_core.run import access


def take(run_dir: Path) -> IO[str]:
    """The run's lock, held until the returned file is closed; RunInUse if another holds it,
    RunNotShared if the run is another user's, one line if the folder cannot be written
    (read-only, full)."""
    try:
        f = (run_dir / ".lock").open("a+")
    except PermissionError as exc:
        if run_dir.stat().st_uid != os.getuid():
            raise access.not_shared(run_dir) from None
        raise cannot_write_in(run_dir, exc) from None  # the person's own read-only folder
    except OSError as exc:
        raise cannot_write_in(run_dir, exc) from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        f.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise RunInUse(run_dir) from None
        raise
    try:
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):  # closing flushes the pid that did not fit again
            f.close()
        raise cannot_write_in(run_dir, exc) from None
    return f


def cannot_write_in(run_dir: Path, exc: OSError) -> SalalError:
    return SalalError(
        f"cannot write in {run_dir} ({exc.strerror or exc}); a run needs a folder it can "
        "write to: free some disk space or make it writable, or pick another --out"
    )
