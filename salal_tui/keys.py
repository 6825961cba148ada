"""Which keys label which class: one key each up to 34 classes (digits first, then letters the
app does not use itself); beyond that two keys each; or codes of a person's own from a key map
file. No code is the start of another, so a first key either labels or waits for a second."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from salal_core.errors import SalalError

DIGITS = "1234567890"  # "1" is the first class: the digit row reads left to right
LETTERS = "abcdefghijklmnoprtuvwxyz"  # no q (quit) and no s (skip)
SINGLE = DIGITS + LETTERS  # 34 keys

KeyOutcome = Literal["label", "wait", "restart", "other"]


@dataclass(frozen=True)
class KeyMap:
    codes: tuple[str, ...]  # class i is labeled by typing codes[i]

    @classmethod
    def default(cls, count: int) -> KeyMap:
        if count <= len(SINGLE):
            return cls(tuple(SINGLE[:count]))
        pairs = [a + b for a in SINGLE for b in SINGLE]
        if count > len(pairs):
            raise SalalError(f"at most {len(pairs)} classes have keys; use --keys FILE")
        return cls(tuple(pairs[:count]))

    @classmethod
    def read(cls, path: Path, class_names: Sequence[str] | None) -> KeyMap:
        """A key map file: one `CODE CLASS` a line (a code of one or two keys), # comments.
        `class_names` None (not known yet: the images are not loaded) checks the file alone,
        and the map it returns is in the file's order."""
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise SalalError(f"cannot read --keys {path} ({exc.strerror})") from None
        by_class: dict[str, str] = {}
        for n, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            code, _, name = text.partition(" ")
            name = name.strip()
            if not name or not 1 <= len(code) <= 2 or any(c not in SINGLE for c in code):
                raise SalalError(
                    f"{path.name} line {n}: expected CODE CLASS, a code of one or two of "
                    f"{SINGLE} (q and s are the app's)"
                )
            if class_names is not None and name not in class_names:
                raise SalalError(f"{path.name} line {n}: this run has no class {name!r}")
            by_class[name] = code
        if class_names is None:
            class_names = list(by_class)
        missing = [c for c in class_names if c not in by_class]
        if missing:
            raise SalalError(f"{path.name} gives no keys for {', '.join(missing)}")
        keymap = cls(tuple(by_class[c] for c in class_names))
        keymap.check(path.name)
        return keymap

    def check(self, where: str) -> None:
        """Every code its own, and none the start of another (else it could never be typed)."""
        for i, a in enumerate(self.codes):
            for b in self.codes[i + 1 :]:
                if a.startswith(b) or b.startswith(a):
                    raise SalalError(f"{where}: keys {a!r} and {b!r} clash; give one another code")

    def lookup(self, typed: str) -> int | None:
        """The class `typed` labels, or None (not a code, or only the start of one)."""
        try:
            return self.codes.index(typed)
        except ValueError:
            return None

    def starts(self, typed: str) -> bool:
        """`typed` begins a longer code: wait for the next key."""
        return any(len(c) > len(typed) and c.startswith(typed) for c in self.codes)

    def knows(self, key: str) -> bool:
        return self.lookup(key) is not None or self.starts(key)


@dataclass
class KeyInput:
    """Keys as they are typed: a class, the first key of a two-key code, or no class."""

    keymap: KeyMap
    pending: str = ""

    def feed(self, key: str) -> tuple[KeyOutcome, int | None]:
        """("label", class), ("wait", None) for half a code, ("restart", None) when a second
        key makes no code, or ("other", None): not a class key (a binding may want it)."""
        typed = self.pending + key
        self.pending = ""
        if not self.keymap.knows(typed):
            return ("restart" if len(typed) > 1 else "other"), None
        label = self.keymap.lookup(typed)
        if label is None:
            self.pending = typed
            return "wait", None
        return "label", label
