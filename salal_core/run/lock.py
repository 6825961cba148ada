"""One process works on a run at a time: an advisory lock on RUN_DIR/.lock, which the
operating system lets go of when the process ends, however it ends, so a crash never leaves a
run locked. The file holds the holder's process id, for a person wondering who has it."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import IO

from salal_core.errors import RunInUse
from salal_core.run import access


def take(run_dir: Path) -> IO[str]:
    """The run's lock, held until the returned file is closed; RunInUse if another holds it,
    RunNotShared if the run is another user's."""
    try:
        f = (run_dir / ".lock").open("a+")
    except PermissionError:
        raise access.not_shared(run_dir) from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        f.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise RunInUse(run_dir) from None
        raise
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f
