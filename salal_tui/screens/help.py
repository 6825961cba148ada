"""The keys, one screen."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = [
    ("1 … 9, 0, a …", "label the image with that class and move on (two keys past 34)"),
    ("backspace", "undo the last label (until the model has trained on it)"),
    ("space or s", "skip: the image goes back to the pool"),
    ("enter", "zoom: the image as large as the terminal allows; any key returns"),
    ("g or tab", "the queue as a grid of tiles (g is a class key past 16 classes)"),
    ("  in the grid", "class keys label the tiles in reading order; arrows move the cursor"),
    ("  enter", "accept the model's guess on every tile not typed, at the bar or above"),
    ("  + / -", "move that bar; g, tab or escape goes back to one image at a time"),
    ("ctrl+r", "review the labels so far, the most doubtful first (q comes back)"),
    ("+ / -", "auto-oracle: show images faster / slower"),
    ("?", "this help"),
    ("q", "quit; every label is already saved (resume with --resume RUN_DIR)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q,enter", "dismiss", "close")
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in HELP:
            table.add_row(key, what)
        # The title and the way back stay in the box; the keys between them scroll where
        # the terminal is too short for them all (80x24 wraps several lines).
        with Vertical(id="help-box"):
            yield Static("[b]salal keys[/b]\n", id="help-title")
            with VerticalScroll(id="help-keys"):
                yield Static(table)
            yield Static("\n[dim]press ? or escape to go back[/dim]", id="help-back")
