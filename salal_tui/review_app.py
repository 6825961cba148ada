"""`salal-tui --review RUN_DIR`: the review screen on its own, over a stopped run (no engine
runs; the run is locked while it is reviewed). Everything is saved as it is typed."""

from __future__ import annotations

from textual.app import App

from salal_core.parallel.spawning import prepare_to_spawn
from salal_core.run.labelers import login_name
from salal_core.run.store import RunStore

from .graphics import Drawing
from .review_source import RunFiles
from .screens.review import ReviewScreen


class ReviewApp(App[None]):
    CSS_PATH = "salal.tcss"
    TITLE = "salal review"

    def __init__(
        self, store: RunStore, device: str = "auto", drawing: Drawing = "blocks", only: str = ""
    ) -> None:
        """`only`: one labeler's own answers (--labeler)."""
        super().__init__()
        prepare_to_spawn()  # its probes run in a process of their own
        self.review = ReviewScreen(
            RunFiles(store, device, login_name()), drawing=drawing, only=only
        )
        self.error: str | None = None

    def on_mount(self) -> None:
        self.push_screen(self.review)

    def on_review_screen_failed(self, failed: ReviewScreen.Failed) -> None:
        self.error = failed.line
        self.exit(None, return_code=2)
