"""What a source holds, as (relative posix path, reader of its bytes) pairs, whether it is a
folder on disk or a tar archive, so one classifier and one decoder serve both.

A folder is walked in name order, files before sub-folders, following linked folders (a link
back to a folder above it is a loop, walked once). Whatever cannot be read as a file of its
own is skipped and named instead of stopping the load: a name that is not UTF-8, a link loop,
a dangling link, a FIFO or device, a folder that cannot be listed.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from salal_core.data.skipped import SkippedFile, SkipReason, is_utf8, shown_name
from salal_core.errors import SalalError

Member = tuple[str, Callable[[], bytes]]


@dataclass(frozen=True)
class FolderFile:
    """A regular file under the folder (or reached through a link in it)."""

    name: str  # its path relative to the folder, posix style
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FolderScan:
    files: tuple[FolderFile, ...]
    skipped: tuple[SkippedFile, ...]


@dataclass(frozen=True)
class Members:
    """A source's readable files, and the ones it holds that cannot be read."""

    members: list[Member]
    skipped: list[SkippedFile]


def _unreachable(path: Path, exc: OSError) -> SkipReason:
    """Why stat() failed on an entry that listing the folder found."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError) and path.is_symlink():
        return "dangling link"
    return "unreadable"


def scan_folder(root: Path) -> FolderScan:
    """Every regular file under `root` (files of a folder in name order, then its sub-folders),
    and every entry that is skipped, with why. Nothing in the folder makes it raise."""
    files: list[FolderFile] = []
    skipped: list[SkippedFile] = []
    root_stat = root.stat()
    # (folder, its path relative to root, the (device, inode) of it and every folder above it)
    pending = [(root, PurePosixPath(), frozenset({(root_stat.st_dev, root_stat.st_ino)}))]
    while pending:
        folder, rel, above = pending.pop()
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            skipped.append(SkippedFile(shown_name(rel.as_posix()), "unreadable"))
            continue
        folders = []
        for name in names:
            path, child = folder / name, rel / name
            if not is_utf8(name):
                skipped.append(SkippedFile(shown_name(child.as_posix()), "name not UTF-8"))
                continue
            try:
                st = path.stat()
            except OSError as exc:
                skipped.append(SkippedFile(child.as_posix(), _unreachable(path, exc)))
                continue
            if stat.S_ISDIR(st.st_mode):
                identity = (st.st_dev, st.st_ino)
                if identity in above:
                    skipped.append(SkippedFile(child.as_posix(), "symlink loop"))
                else:
                    folders.append((path, child, above | {identity}))
            elif stat.S_ISREG(st.st_mode):
                files.append(FolderFile(child.as_posix(), path, st.st_size, st.st_mtime_ns))
            else:
                skipped.append(SkippedFile(child.as_posix(), "not a regular file"))
        pending.extend(reversed(folders))  # popped in name order
    return FolderScan(tuple(files), tuple(skipped))


def _check_member_name(name: str, archive: Path) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        raise SalalError(
            f"{archive} has a member {name!r} that would land outside its folder; "
            "refusing to read it (re-create the archive with relative paths)"
        )


def _tar_members(path: Path) -> Members:
    members: list[Member] = []
    skipped: list[SkippedFile] = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for info in tar:
                _check_member_name(info.name, path)
                if not info.isfile():
                    continue
                if not is_utf8(info.name):
                    skipped.append(SkippedFile(shown_name(info.name), "name not UTF-8"))
                    continue
                member = tar.extractfile(info)
                if member is None:  # a link or device, despite isfile(): nothing to read
                    continue
                members.append((info.name, functools.partial(bytes, member.read())))
    except (tarfile.ReadError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise SalalError(
            f"{path} is truncated or not a tar archive ({exc}); download or copy it again"
        ) from None
    return Members(members, skipped)


def walk_members(path: Path) -> Members:
    """The files of a folder (read when asked) or of a tar archive (read in one pass)."""
    if not path.is_dir():
        return _tar_members(path)
    scan = scan_folder(path)
    return Members([(f.name, f.path.read_bytes) for f in scan.files], list(scan.skipped))
