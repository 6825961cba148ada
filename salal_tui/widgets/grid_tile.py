"""One tile of the grid: a queued image, its number, and the model's guess or the answer
already given. The cursor's tile has a heavy border; a guess the accept key would take is
green."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from salal_core.events import OracleName, Query
from salal_core.run.oracle import SKIP

from ..graphics import Drawing
from ..render import Pixels
from .image_pane import ImagePane
from .panes import image_pane


@dataclass(frozen=True)
class TileAnswer:
    label: int  # SKIP when skipped
    oracle: OracleName  # "human" typed, "accepted" taken from the guess


def confidence(query: Query) -> float | None:
    """How sure the model is of its guess; None before any model exists (a cold start)."""
    return None if query.cold_start else max(query.probabilities)


def guess_text(
    query: Query, class_names: list[str], threshold: float, answer: TileAnswer | None
) -> Text:
    """The tile's line under its image."""

    def name(label: int) -> str:
        return class_names[label] if label < len(class_names) else str(label)

    if answer is not None:
        if answer.label == SKIP:
            return Text("skipped", style="dim")
        how = "accepted" if answer.oracle == "accepted" else "typed"
        return Text.assemble(("✓ ", "green"), (name(answer.label), "bold"), (f"  {how}", "dim"))
    sure = confidence(query)
    if sure is None:
        return Text("no guess yet: type its class", style="italic")
    style = "bold green" if sure >= threshold else "cyan"
    return Text.assemble(("guess ", "dim"), (f"{name(query.predicted)} {sure:.0%}", style))


class GridTile(Vertical):
    """An image pane and a line of text, inside a border that marks the cursor."""

    def __init__(self, drawing: Drawing, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drawing = drawing

    def compose(self) -> ComposeResult:
        yield image_pane(self.drawing, classes="tile-image")
        yield Static("", classes="tile-guess")

    def show(self, query: Query | None, pixels: Pixels | None, guess: Text) -> None:
        """Draw `query`'s image and line; None leaves the tile empty (the queue ran out)."""
        self.set_class(query is None, "empty")
        self.query_one(ImagePane).show(pixels, "" if query is None else f"#{query.index}")
        self.query_one(".tile-guess", Static).update(guess)

    def mark(self, guess: Text) -> None:
        """Only the line changes: an answer given or taken back, a new threshold."""
        self.query_one(".tile-guess", Static).update(guess)

    def prepare(self, pixels: Pixels, query: Query) -> None:
        """Build the image a later page shows in this tile, ahead of time."""
        self.query_one(ImagePane).prepare(pixels, f"#{query.index}")
