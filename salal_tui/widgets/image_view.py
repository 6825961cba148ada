"""The queried image, drawn as large as the widget allows."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from ..render import image_text


class ImageView(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.pixels: np.ndarray | None = None
        self.caption = ""
        self._drawn: tuple[str, int, int] | None = None

    def show(self, pixels: np.ndarray | None, caption: str = "") -> None:
        self.pixels, self.caption = pixels, caption
        self._draw()

    def on_resize(self, event: Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.pixels is None:
            self._drawn = None
            self.update(Text(self.caption or "waiting for images…", style="dim"))
            return
        cols, rows = self.content_size.width, self.content_size.height
        if cols < 1 or rows < 2:
            return
        key = (self.caption, cols, rows)  # the caption names the image (#index)
        if key != self._drawn:  # a resize or a new image; re-drawing the same one is waste
            text = image_text(self.pixels, cols, rows - 1)
            text.append("\n" + self.caption, style="bold")
            self.update(text)
            self._drawn = key
