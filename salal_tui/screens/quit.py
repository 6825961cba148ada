"""Quit, after asking: labels are saved either way."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class QuitScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,q", "answer(True)", "quit"),
        Binding("n,escape", "answer(False)", "stay"),
    ]

    def __init__(self, run_dir: str, carry_on: str) -> None:
        """`carry_on`: the command that carries on (--resume, or --join for a served run)."""
        super().__init__()
        self.run_dir, self.carry_on = run_dir, carry_on

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box"):
            yield Static("[b]Quit salal?[/b]\n")
            yield Static(
                f"Every label you gave is saved in {self.run_dir}.\n"
                f"Carry on later with [b]{self.carry_on}[/b]\n"
            )
            yield Static("[b cyan] y [/] quit    [b cyan] n [/] keep labeling")

    def action_answer(self, quit_: bool) -> None:
        self.dismiss(quit_)
