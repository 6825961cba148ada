"""Who may read a run directory: its owner alone, or with `serve --socket-group`, the run
directory's group too (to reach the service's socket beside the run's files).

The process that holds a run makes the directory itself so (0700, or 0750 for the group): that
alone keeps everybody else out of everything in it, whatever each file's own mode. salal's own
files there are made so as well (0600, or 0640), for the day the directory is opened wider.
Nothing else is touched: `--out` may be a folder that holds other things (a person's scripts,
another program's folders), and their modes stay theirs. The process's umask is left alone.
A user the run is not shared with is told in one line whose it is (errors.RunNotShared).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from salal_core.errors import RunNotShared
from salal_core.run.labelers import group_name, user_name

PRIVATE_MODE = 0o700  # the owner alone
GROUP_MODE = 0o750  # the owner, and the group may read and enter
OWN_FILES = (  # what salal writes at the top of a run directory (store.py's layout)
    ".lock",
    ".group",
    "salal.db",
    "salal.db-wal",
    "salal.db-shm",
    "config.toml",
    "summary.json",
    "engine.log",
    "service.log",
    "salal.sock.path",
)
CHECKPOINTS = "checkpoints"


def restrict(run_dir: Path, group: bool = False) -> None:
    """Make `run_dir` and salal's own files in it the owner's alone, or readable by its group
    with `group`; the caller holds the run. Sockets are left to endpoint.py."""
    folder_mode = GROUP_MODE if group else PRIVATE_MODE
    file_mode = folder_mode & 0o666
    _chmod(run_dir, folder_mode, refuse=True)
    for name in OWN_FILES:
        _chmod(run_dir / name, file_mode)
    checkpoints = run_dir / CHECKPOINTS
    if _chmod(checkpoints, folder_mode):
        for path in checkpoints.glob("*.pt"):
            _chmod(path, file_mode)


def _chmod(path: Path, mode: int, refuse: bool = False) -> bool:
    """Give `path` `mode` if it is a real file or folder of this user's (never along a link,
    never another user's); whether it is one. With `refuse`, a folder this user may not change
    is another user's run."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        return False
    if info.st_uid != os.getuid() and not refuse:
        return False
    if stat.S_IMODE(info.st_mode) != mode:
        try:
            os.chmod(path, mode)
        except PermissionError:
            if refuse:
                raise not_shared(path) from None
            return False
    return True


def not_shared(path: Path) -> RunNotShared:
    """The one-line refusal for a run another user holds: named after the owner of `path`, or
    of the nearest folder above it this user may look at; and where `path` is open to a group
    this user is not in (a --socket-group run), that group, to ask to be added to."""
    for candidate in (path, *path.absolute().parents):
        try:
            info = candidate.stat()
        except OSError:
            continue
        group = _shared_group(info) if candidate == path else None
        return RunNotShared(user_name(info.st_uid), group)
    return RunNotShared("another user")


def _shared_group(info: os.stat_result) -> str | None:
    """The group a run directory (0750) or its socket (0770) is open to, closed to everybody
    else, where this user is not in it; None for anything else."""
    folder = stat.S_ISDIR(info.st_mode)
    group_may, others_may = (stat.S_IXGRP, stat.S_IXOTH) if folder else (stat.S_IWGRP, stat.S_IWOTH)
    if not info.st_mode & group_may or info.st_mode & others_may:
        return None
    if info.st_gid == os.getgid() or info.st_gid in os.getgroups():
        return None
    return group_name(info.st_gid)
