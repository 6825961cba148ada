"""The queried image, drawn as large as the widget allows."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from ..render import image_text

CACHE_SIZE = 64


class ImageView(Static):
    """Draws one image; images queued next can be drawn ahead in a thread (`prerender`), so a
    keypress only swaps in text that is already built."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.pixels: np.ndarray | None = None
        self.caption = ""
        self._drawn: tuple[str, int, int] | None = None
        self._cache: OrderedDict[tuple[str, int, int], Text] = OrderedDict()

    def show(self, pixels: np.ndarray | None, caption: str = "") -> None:
        self.pixels, self.caption = pixels, caption
        self._draw()

    def on_resize(self, event: Resize) -> None:
        self._draw()

    def _area(self) -> tuple[int, int]:
        return self.content_size.width, self.content_size.height

    def _text(self, pixels: np.ndarray, caption: str, cols: int, rows: int) -> Text:
        key = (caption, cols, rows)  # the caption names the image (#index)
        text = self._cache.get(key)
        if text is None:
            text = image_text(pixels, cols, rows - 1)
            text.append("\n" + caption, style="bold")
            self._cache[key] = text
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return text

    def prerender(self, items: list[tuple[np.ndarray, str]]) -> None:
        """Build the text of images shown next; safe to call from a worker thread."""
        cols, rows = self._area()
        if cols >= 1 and rows >= 2:
            for pixels, caption in items:
                self._text(pixels, caption, cols, rows)

    def _draw(self) -> None:
        if self.pixels is None:
            self._drawn = None
            self.update(Text(self.caption or "waiting for images…", style="dim"))
            return
        cols, rows = self._area()
        if cols < 1 or rows < 2 or (self.caption, cols, rows) == self._drawn:
            return
        self.update(self._text(self.pixels, self.caption, cols, rows))
        self._drawn = (self.caption, cols, rows)
