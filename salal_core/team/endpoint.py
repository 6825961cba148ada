"""Where a run's service listens, and who may connect.

The socket is `RUN_DIR/salal.sock`, made under umask 077; with --socket-group it is given to
the run directory's group, and the directory is opened to that group. Where that path is too
long for AF_UNIX (about 107 bytes) or the filesystem cannot hold a socket (NFS), it is made in
the user's runtime directory instead, and `RUN_DIR/salal.sock.path` names it. Every peer is
checked with SO_PEERCRED: the run's owner, or with --socket-group, a member of the run
directory's group.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import hashlib
import os
import pwd
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from salal_core.errors import RunInUse, SalalError
from salal_core.run import access
from salal_core.run.labelers import group_name

SOCKET_NAME = "salal.sock"
POINTER_NAME = "salal.sock.path"
MAX_SOCKET_PATH = 107  # bytes, with the terminating NUL of sun_path's 108


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Admission:
    """Who may connect: the owner's uid, and the group allowed beside it (None: nobody)."""

    owner_uid: int
    group_gid: int | None

    def allows(self, peer: Peer) -> bool:
        if peer.uid == self.owner_uid:
            return True
        if self.group_gid is None:
            return False
        if peer.gid == self.group_gid:
            return True
        try:
            name = pwd.getpwuid(peer.uid).pw_name
            return name in grp.getgrgid(self.group_gid).gr_mem
        except KeyError:
            return False


def peer_of(conn: socket.socket) -> Peer:
    """The connecting process's credentials, as the kernel saw them at connect."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return Peer(*struct.unpack("3i", raw))


def runtime_socket(run_dir: Path) -> Path:
    """The fallback place: the user's runtime directory, named after the run's path."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/salal-{os.getuid()}")
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return base / f"salal-{digest}.sock"


def socket_path(run_dir: Path) -> Path:
    """Where a client finds the run's service (the pointer file wins where there is one)."""
    pointer = run_dir / POINTER_NAME
    if pointer.exists():
        return Path(pointer.read_text().strip())
    return run_dir / SOCKET_NAME


def joinable(exc: RunInUse) -> SalalError:
    """A run in use, said with the command that joins it where a service holds it."""
    if socket_path(exc.run_dir).is_socket():
        return SalalError(
            f"{exc.run_dir} is being labeled; label beside them with: salal-tui --join "
            f"{exc.run_dir}"
        )
    return exc


def listen(run_dir: Path, group: bool = False) -> tuple[socket.socket, Path]:
    """Bind the run's socket (the caller holds the run's lock), private to its owner, or to
    the directory's group with `group`."""
    pointer = run_dir / POINTER_NAME
    with contextlib.suppress(FileNotFoundError):
        pointer.unlink()
    path = run_dir / SOCKET_NAME
    server: socket.socket | None = None
    if len(os.fsencode(path.resolve())) <= MAX_SOCKET_PATH:
        server = _bind(path)
    if server is None:
        if group:  # the runtime directory is its user's alone: the group could not reach it
            raise SalalError(
                f"--socket-group needs the socket in {run_dir}, whose path is too long for one "
                "or whose filesystem cannot hold one; serve the run from a shorter local path"
            )
        path = runtime_socket(run_dir)
        server = _bind(path)
        if server is None:
            raise SalalError(f"cannot make a socket at {path}; check its directory")
        pointer.write_text(f"{path}\n")
    if group:
        _open_to_group(run_dir, path)
    server.listen(16)
    return server, path


def _open_to_group(run_dir: Path, path: Path) -> None:
    """Let the run directory's group reach the socket: the directory may be entered and read
    by it (access.py), and the socket is the group's (set here: a new file takes the owner's
    primary group unless its folder is set-group-id)."""
    access.restrict(run_dir, group=True)
    gid = run_dir.stat().st_gid
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        raise SalalError(
            f"cannot give {path} to the run directory's group {group_name(gid)}; chgrp "
            f"{run_dir} to a group you belong to"
        ) from None
    os.chmod(path, 0o770)


def _bind(path: Path) -> socket.socket | None:
    """A socket bound at `path` (a stale one of ours removed first); None where the
    filesystem cannot hold one."""
    remove_stale(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        server.bind(str(path))
    except OSError as exc:
        server.close()
        if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EACCES, errno.ENAMETOOLONG):
            return None
        raise
    finally:
        os.umask(old)
    return server


def remove(run_dir: Path, path: Path) -> None:
    """The socket at `path` and the run's pointer to it off the disk. It takes no lock, so a
    signal handler may call it whatever the thread it interrupted holds."""
    for made in (path, run_dir / POINTER_NAME):
        with contextlib.suppress(FileNotFoundError):
            made.unlink()


def remove_stale(path: Path) -> None:
    """Remove a socket left by a service that died, only if it is ours and nobody answers."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise SalalError(f"{path} is in the way and is not a socket of yours; move it away")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # refused: nobody listens
        return
    finally:
        probe.close()
    raise SalalError(f"a salal service already answers on {path}; join it with --join")


def connect(target: Path) -> socket.socket:
    """A connection to a run's service: `target` is the run directory, or the socket itself
    (one forwarded with ssh -L); a one-line error saying how to start one if none answers, or
    whose the run is if it is not shared with this user."""
    try:
        path = target if target.is_socket() else socket_path(target)
    except PermissionError:  # a run directory closed to this user
        raise access.not_shared(target) from None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError as exc:
        conn.close()
        if exc.errno in (errno.EACCES, errno.EPERM):  # someone's socket, not shared with us
            raise access.not_shared(path) from None
        raise SalalError(
            f"no salal service answers on {path} ({exc.strerror or exc}); start one with "
            f"salal-core serve {target}"
        ) from None
    return conn
