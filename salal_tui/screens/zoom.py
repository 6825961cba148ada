"""The image on screen, as large as the terminal allows; any key returns."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import ModalScreen

from ..widgets.image_view import ImageView, Pixels


class ZoomScreen(ModalScreen[None]):
    def __init__(self, pixels: Pixels, caption: str) -> None:
        super().__init__()
        self.pixels, self.caption = pixels, caption

    def compose(self) -> ComposeResult:
        yield ImageView(id="zoom")

    def on_mount(self) -> None:
        self.query_one(ImageView).show(self.pixels, self.caption)

    def on_key(self, event: events.Key) -> None:
        event.stop()  # the key only closes the zoom: it never labels the image behind it
        self.dismiss(None)
