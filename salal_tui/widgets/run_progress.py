"""Progress toward the label budget: labeled / target, round, queue, where labels came from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static


class RunProgress(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="progress-text")
        yield ProgressBar(show_eta=False, id="progress-bar")

    def show(
        self, labeled: int, target: int, round_: int, queued: int, origin: str, gains: str = ""
    ) -> None:
        self.query_one("#progress-text", Static).update(
            f"labeled [b]{labeled:,}[/b] / {target:,}   round {round_}   {queued} queued"
            + (f"   {gains}" if gains else "")
            + (f"   [dim]{origin}[/dim]" if origin else "")
        )
        self.query_one("#progress-bar", ProgressBar).update(total=max(target, 1), progress=labeled)
