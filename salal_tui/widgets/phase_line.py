"""One line saying what the engine is doing right now."""

from __future__ import annotations

from textual.widgets import Static


class PhaseLine(Static):
    def show(self, text: str) -> None:
        self.update(text, layout=False)  # one line, updated several times a second: no reflow
