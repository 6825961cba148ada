"""Each image's own bytes, so that a viewer (the app, or the service for a joined labeler) can
draw it from them rather than from the model's small decoded copy: the file of a folder
source, or an archive's member read by seeking. A plain tar is read in place; a compressed one
(gzip, bzip2, xz) is decompressed once into the cache folder, since finding one member in a
compressed stream means decompressing everything before it."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import tarfile
import threading
from pathlib import Path, PurePosixPath
from typing import IO

from salal_core.data.decode import IMAGE_SUFFIXES
from salal_core.data.sources import ImageSet
from salal_core.errors import SalalError

# The first bytes of each compressed format tarfile reads, and its module's opener.
COMPRESSED = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


def plain_tar(archive: Path, cache_dir: Path) -> Path:
    """The archive as a plain tar: itself, or its decompressed copy in `cache_dir`, made once
    (named by the archive's size and modification time) and written whole before it is used."""
    with archive.open("rb") as f:
        head = f.read(6)
    opener = next((o for magic, o in COMPRESSED.items() if head.startswith(magic)), None)
    if opener is None:
        return archive
    stat = archive.stat()
    target = cache_dir / "originals" / f"{archive.name}-{stat.st_size}-{stat.st_mtime_ns}.tar"
    if target.exists():
        return target
    partial = target.with_suffix(f".partial-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source: IO[bytes]
        with opener(archive, "rb") as source, partial.open("wb") as out:  # type: ignore[operator]
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(partial, target)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        partial.unlink(missing_ok=True)
        raise SalalError(f"cannot decompress {archive} into {target.parent} ({exc})") from None
    return target


class ArchiveMembers:
    """The regular files of a plain tar by name, each read with one seek."""

    def __init__(self, tar_path: Path) -> None:
        self.path = tar_path
        with tarfile.open(tar_path, "r:") as tar:  # headers only: the data is skipped over
            self.where = {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}

    def read(self, name: str) -> bytes | None:
        """The member's bytes; None if the archive has no such member."""
        found = self.where.get(name)
        if found is None:
            return None
        offset, size = found
        with self.path.open("rb") as f:
            f.seek(offset)
            return f.read(size)


class OriginalSources:
    """Where the images of one load can be read from their own bytes.

    A folder source is read file by file. An archive of image files is indexed by a thread
    (a compressed one decompressed once into `cache_dir` first); until that is done, and for
    CIFAR's pickled rows, there is no source but the model's copy.
    """

    def __init__(self, images: ImageSet, cache_dir: Path) -> None:
        self.images = images
        self.members: ArchiveMembers | None = None
        self.indexed = threading.Event()
        source, ids = Path(images.source), images.train.ids
        if source.is_file() and ids and PurePosixPath(ids[0]).suffix.lower() in IMAGE_SUFFIXES:
            threading.Thread(target=self._index, args=(source, cache_dir), daemon=True).start()
        else:
            self.indexed.set()

    def _index(self, archive: Path, cache_dir: Path) -> None:
        try:
            self.members = ArchiveMembers(plain_tar(archive, cache_dir))
        except (SalalError, OSError, tarfile.TarError):
            pass  # drawn from the model's copy, as before the index
        finally:
            self.indexed.set()

    def source(self, index: int) -> Path | bytes | None:
        """Training image `index`'s own file, or its archive member's bytes; None if neither
        can be read (yet)."""
        path = self.images.original_path(index)
        if path is None and self.members is not None:
            return self.members.read(self.images.train.ids[index])
        return path
