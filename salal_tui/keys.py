"""Which key labels which class: digits first, then letters the app does not use itself."""

from __future__ import annotations

DIGITS = "1234567890"  # "1" is the first class: the digit row reads left to right
LETTERS = "abcdefghijklmnoprtuvwxyz"  # no q (quit) and no s (skip)


def class_keys(count: int) -> list[str]:
    keys = (DIGITS + LETTERS)[:count]
    if len(keys) < count:
        raise ValueError(f"at most {len(DIGITS + LETTERS)} classes have a key of their own")
    return list(keys)
