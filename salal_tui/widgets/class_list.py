"""The classes and the key that labels each."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..keys import class_keys


class ClassList(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.names: list[str] = []
        self.keys: list[str] = []

    def set_classes(self, names: list[str]) -> None:
        self.names, self.keys = list(names), class_keys(len(names))
        self.mark(None)

    def mark(self, chosen: int | None) -> None:
        """Redraw, highlighting the class just chosen."""
        columns = 2 if len(self.names) > 6 else 1
        table = Table.grid(padding=(0, 2))
        for _ in range(columns):
            table.add_column()
        cells = []
        for i, (key, name) in enumerate(zip(self.keys, self.names, strict=True)):
            style = "reverse bold" if i == chosen else ""
            cells.append(Text.assemble((f" {key} ", "bold black on cyan"), " ", (name, style)))
        for start in range(0, len(cells), columns):
            table.add_row(*cells[start : start + columns])
        self.update(table)
