"""Who may read a run directory: its owner alone, or with `serve --socket-group`, the run
directory's group too (to reach the service's socket, and read what is beside it).

The process that holds a run makes the directory and everything in it so (0700 and 0600, or
0750 and 0640 for the group), and sets its umask to match, so that what it and its engine
write from then on (checkpoints, the journal's WAL, logs) is made so too. A user the run is
not shared with is told in one line whose it is (errors.RunNotShared).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from salal_core.errors import RunNotShared
from salal_core.team.labelers import user_name

PRIVATE_UMASK = 0o077  # the owner alone
GROUP_UMASK = 0o027  # the owner, and the group may read and enter


def restrict(run_dir: Path, group: bool = False) -> None:
    """Make `run_dir` and its files the owner's alone, or readable by its group with `group`;
    the caller holds the run. Sockets and links are left as they are (endpoint.py decides
    who may connect)."""
    umask = GROUP_UMASK if group else PRIVATE_UMASK
    os.umask(umask)
    for folder, _, files in os.walk(run_dir):  # into real folders only, never along links
        _chmod(Path(folder), 0o777 & ~umask)
        for name in files:
            _chmod(Path(folder) / name, 0o666 & ~umask)


def _chmod(path: Path, mode: int) -> None:
    try:
        info = path.lstat()
        if (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)) and (
            stat.S_IMODE(info.st_mode) != mode
        ):
            os.chmod(path, mode)
    except FileNotFoundError:
        return  # gone meanwhile (a temporary file of the engine's)
    except PermissionError:
        raise not_shared(path) from None


def not_shared(path: Path) -> RunNotShared:
    """The one-line refusal for a run another user holds: named after the owner of `path`, or
    of the nearest folder above it this user may look at."""
    for candidate in (path, *path.absolute().parents):
        try:
            return RunNotShared(user_name(candidate.stat().st_uid))
        except OSError:
            continue
    return RunNotShared("another user")
