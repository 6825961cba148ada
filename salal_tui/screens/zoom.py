"""The image on screen, as large as the terminal allows; any key returns."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import ModalScreen

from ..graphics import Drawing
from ..render import Pixels
from ..widgets.image_pane import ImagePane
from ..widgets.panes import image_pane


class ZoomScreen(ModalScreen[None]):
    def __init__(self, pixels: Pixels, caption: str, drawing: Drawing = "blocks") -> None:
        super().__init__()
        self.pixels, self.caption, self.drawing = pixels, caption, drawing

    def compose(self) -> ComposeResult:
        yield image_pane(self.drawing, id="zoom")

    def on_mount(self) -> None:
        self.query_one(ImagePane).show(self.pixels, self.caption)

    def on_key(self, event: events.Key) -> None:
        event.stop()  # the key only closes the zoom: it never labels the image behind it
        self.dismiss(None)
