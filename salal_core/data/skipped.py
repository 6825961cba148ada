"""Files under `--data` that salal did not read, each named with why, so a person can find them:
the load's notice counts them, and a run's summary (summary.json, `salal-core run --json`)
lists them all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

SkipReason = Literal[
    "name not UTF-8",  # salal stores and prints names as text: such a name cannot be either
    "symlink loop",
    "dangling link",
    "not a regular file",  # a FIFO, socket or device: reading it could block forever
    "unreadable",  # the bytes could not be read, or are no image Pillow decodes
    "too small",
    "too large",
    "duplicate",  # the same bytes as an image read before it (a pool reads each once)
]

NAMED_IN_A_NOTICE = 5  # past this many, a notice names the first few and counts the rest


@dataclass(frozen=True)
class SkippedFile:
    """One file left out: its path in the source (as `shown_name` writes it) and why."""

    path: str
    reason: SkipReason


def skipped_file(path: str, reason: str) -> SkippedFile:
    """A skipped file read back (the decode cache, a summary.json); ValueError for a reason this
    version does not know."""
    for known in get_args(SkipReason):
        if reason == known:
            return SkippedFile(path, known)
    raise ValueError(f"unknown reason a file was skipped: {reason!r}")


def shown_name(name: str) -> str:
    """A file name as text that can always be printed and stored: bytes that are not UTF-8
    (which Python keeps as surrogate escapes) are written as `\\xff`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    """Whether a name from the file system (or an archive) is valid UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def skip_counts(skipped: Sequence[SkippedFile]) -> dict[SkipReason, int]:
    """How many files were skipped for each reason, in the order the reasons first occur."""
    return dict(Counter(s.reason for s in skipped))


def skipped_sentence(skipped: Sequence[SkippedFile], where: str) -> str:
    """'skipped files in photos: 1 too small, 1 dangling link (tiny.png: too small, ...)':
    the counts, then the first few files by name."""
    counts = ", ".join(f"{n} {reason}" for reason, n in skip_counts(skipped).items())
    named = ", ".join(f"{s.path}: {s.reason}" for s in skipped[:NAMED_IN_A_NOTICE])
    more = len(skipped) - NAMED_IN_A_NOTICE
    rest = f", and {more} more" if more > 0 else ""
    return f"skipped files in {where}: {counts} ({named}{rest})"
