"""The classes and the key that labels each."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..keys import KeyMap


class ClassList(Static):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.names: list[str] = []
        self.keys: list[str] = []

    def show_classes(self, names: list[str], keymap: KeyMap) -> None:
        self.names, self.keys = list(names), list(keymap.codes)
        self.mark(None)

    def _columns(self) -> int:
        return 2 if len(self.names) > 6 else 1

    def mark(self, chosen: int | None) -> None:
        """Redraw, highlighting the class just chosen (called on every keypress: keep it cheap)."""
        columns = self._columns()
        code = max((len(k) for k in self.keys), default=1)
        width = max((len(n) for n in self.names), default=0) + 5 + code
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (key, name) in enumerate(zip(self.keys, self.names, strict=True)):
            if i and i % columns == 0:
                text.append("\n")
            text.append(f" {key:<{code}} ", "bold black on cyan")
            text.append(" ")
            text.append(name, "reverse bold" if i == chosen else "")
            if i % columns != columns - 1:
                text.append(" " * (width - len(name) - 3 - code))
        self.update(text)
