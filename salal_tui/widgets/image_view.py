"""The queried image in half-blocks, drawn as large as the widget allows, through Textual's
line API: two pixels a cell, in any terminal, over SSH, tmux and mosh alike."""

from __future__ import annotations

import textwrap
from collections import OrderedDict
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.events import Resize
from textual.strip import Strip

from ..render import Pixels, image_strips
from .image_pane import ImagePane

CACHE_SIZE = 8  # the image on screen, the ones undo goes back to: each is thousands of objects
CAPTION_STYLE = Style(bold=True)
EMPTY_STYLE = Style(dim=True)


class ImageView(ImagePane):
    """Draws one image from lines built once per image and size (ahead of time, by
    `prepare`, for the image queued next).

    A line-API widget on purpose: a Static would re-measure its content and reflow the screen
    on every image, which costs more than the whole rest of a keypress.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pixels: Pixels | None = None
        self.caption = ""
        self._lines: list[Strip] = []
        self._cache: OrderedDict[tuple[str, int, int], list[Strip]] = OrderedDict()

    def show(self, pixels: Pixels | None, caption: str = "") -> None:
        """Draw the image `pixels` gives (asked only if this image and size are not cached)."""
        self.pixels, self.caption = pixels, caption
        self._draw()

    def prepare(self, pixels: Pixels, caption: str) -> None:
        """Build the lines of an image shown next, so that showing it costs nothing."""
        cols, rows = self.content_size.width, self.content_size.height
        if cols >= 1 and rows >= 2:
            self._strips(pixels, caption, cols, rows)

    def on_resize(self, event: Resize) -> None:
        self._draw()

    def _strips(self, pixels: Pixels, caption: str, cols: int, rows: int) -> list[Strip]:
        key = (caption, cols, rows)  # the caption names the image (#index)
        lines = self._cache.get(key)
        if lines is None:
            image = image_strips(pixels(cols, 2 * (rows - 1)), cols, rows - 1)
            lines = [*image, _text_strip(caption, self.rich_style + CAPTION_STYLE)]
            # Cut to the width now, once: render_line then hands them out as they are.
            # The padding takes the pane's own background, not the terminal's default (which
            # is white in a stock xterm).
            lines = [line.crop_extend(0, cols, self.rich_style) for line in lines]
            self._cache[key] = lines
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return lines

    def _draw(self) -> None:
        cols, rows = self.content_size.width, self.content_size.height
        if self.pixels is None:  # a sentence instead of an image: wrapped to the width
            text = self.caption or "waiting for images…"
            wrapped = textwrap.wrap(text, max(cols, 1)) or [""]
            self._lines = [_text_strip(line, self.rich_style + EMPTY_STYLE) for line in wrapped]
        elif cols >= 1 and rows >= 2:
            self._lines = self._strips(self.pixels, self.caption, cols, rows)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """Line `y` of the content area (Textual adds the padding)."""
        width = self.content_size.width
        style = self.rich_style
        line = self._lines[y] if y < len(self._lines) else Strip.blank(width, style)
        return line if line.cell_length == width else line.crop_extend(0, width, style)


def _text_strip(text: str, style: Style) -> Strip:
    return Strip([Segment(text, style)])
