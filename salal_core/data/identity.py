"""An item is known by its content, not its position: a digest of the bytes it was read from.

A renamed or moved file keeps its digest, so it keeps its label; a folder that gains or loses
files shifts every position after the change, and no label moves with it. Everything seeded
per item (which labels are held out, how ties break) is derived from the digest too, so it
stays put when the pool grows or shrinks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

DIGEST_BYTES = 16


def content_digest(data: bytes | memoryview) -> str:
    """The identity of one item's bytes: 32 hex characters of BLAKE2b."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).hexdigest()


def pixel_digests(images: np.ndarray) -> list[str]:
    """Digests of (N, H, W, C) uint8 rows, for sources whose items are pixels (CIFAR batches)."""
    return unique_digests(content_digest(np.ascontiguousarray(row).data) for row in images)


def unique_digests(digests: Iterable[str]) -> list[str]:
    """Byte-identical copies (which a labeled tree may hold) get `~1`, `~2`, ... in read order,
    so every item has an identity of its own and the same copy gets the same one next time."""
    seen: dict[str, int] = {}
    out = []
    for d in digests:
        n = seen.get(d, 0)
        seen[d] = n + 1
        out.append(d if n == 0 else f"{d}~{n}")
    return out


def item_priority(digests: Sequence[str], seed: int) -> np.ndarray:
    """(N,) int64 from (seed, digest): a seeded order over items that no other item can move."""
    out = np.empty(len(digests), dtype=np.int64)
    for i, d in enumerate(digests):
        h = hashlib.blake2b(f"{seed}:{d}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "little") >> 1  # non-negative int64
    return out


def items_digest(digests: Sequence[str]) -> str:
    """One digest for an ordered list of items: what a checkpoint was trained beside."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for d in digests:
        h.update(d.encode() + b"\n")
    return h.hexdigest()
