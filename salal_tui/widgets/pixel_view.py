"""The queried image in real pixels, at its pane's pixel size: sixel or the kitty graphics
protocol, through textual-image.

Sixel is drawn by this widget itself, as textual-image's own sixel widget does it (the data is
injected on the pane's last line, between two cursor moves), so that the encoding, a few
hundred milliseconds for a photo in pure Python, happens ahead of time: `prepare` encodes the
image queued next in a thread while the person looks at this one, and a keypress only swaps
strings. The encoded image fills the whole pane (the picture centred on the background), so a
smaller picture never leaves the last one's pixels showing around it.
"""

from __future__ import annotations

import textwrap
import threading
from collections import OrderedDict
from typing import Any, Literal

import numpy as np
from PIL import Image
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.dom import NoScreen
from textual.events import Resize
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from ..render import Pixels, fitted
from .image_pane import ImagePane

CACHE_SIZE = 8  # the image on screen, the one queued next, those undo goes back to
NULL_STYLE = Style()
BACKGROUND = (0, 0, 0)


def cell_pixels() -> tuple[int, int]:
    """A terminal cell's (width, height) in pixels, as the terminal said before the app began."""
    from textual_image._terminal import get_cell_size

    size = get_cell_size()
    return size.width, size.height


def fit_into(pixels: np.ndarray, width: int, height: int) -> Image.Image:
    """The image as large as fits width x height pixels (render.fitted), centred at the top
    of a canvas of exactly that size."""
    picture = fitted(pixels, width, height)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    canvas.paste(picture, ((width - picture.width) // 2, 0))
    return canvas


def sixel_of(pixels: Pixels, cols: int, rows: int) -> str:
    """The sixel data that fills cols x rows cells with the image."""
    from textual_image._sixel import image_to_sixels

    cell_width, cell_height = cell_pixels()
    width, height = cols * cell_width, rows * cell_height
    return image_to_sixels(fit_into(pixels(width, height), width, height))


class SixelCanvas(Widget):
    """The picture's cells: empty lines, and the sixel data written over them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._lock = threading.Lock()  # `prepare`'s thread and the app's both fill the cache
        self._encoding: dict[tuple[str, int, int], threading.Event] = {}
        self.shown: tuple[str, int, int] | None = None

    def encoded(self, pixels: Pixels, caption: str) -> str | None:
        """The image's sixel data at the canvas's size, encoded once: a caller that finds the
        same image being encoded (a key pressed while `prepare` works) waits for it."""
        cols, rows = self.content_size.width, self.content_size.height
        if cols < 1 or rows < 1:
            return None
        key = (caption, cols, rows)  # the caption names the image (#index)
        with self._lock:
            found, running = self._cache.get(key), self._encoding.get(key)
            if found is None and running is None:
                self._encoding[key] = mine = threading.Event()
        if found is not None:
            return found
        if running is not None:
            running.wait()
            with self._lock:
                found = self._cache.get(key)
            return found if found is not None else self.encoded(pixels, caption)
        try:
            found = sixel_of(pixels, cols, rows)
            with self._lock:
                self._cache[key] = found
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        finally:
            with self._lock:
                del self._encoding[key]
            mine.set()
        return found

    def draw(self, pixels: Pixels | None, caption: str) -> None:
        self.shown = None
        if pixels is not None and self.encoded(pixels, caption) is not None:
            cols, rows = self.content_size.width, self.content_size.height
            self.shown = (caption, cols, rows)
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        blank = [Strip.blank(crop.width, self.rich_style)] * crop.height
        try:
            if self.shown is None or not self.screen.is_active:
                return blank
            visible = self.screen.find_widget(self).visible_region
        except NoScreen:
            return blank
        with self._lock:
            data = self._cache.get(self.shown)
        if data is None or crop.height < 1:
            return blank
        segments = [
            Segment(Control.move_to(visible.x, visible.y).segment.text, NULL_STYLE),
            Segment(data, NULL_STYLE, control=((ControlType.CURSOR_FORWARD, 0),)),
            Segment(Control.move_to(visible.right, visible.bottom - 1).segment.text, NULL_STYLE),
        ]
        # Empty strips write nothing, so the rows above keep the pixels the last one draws.
        return [Strip([])] * (crop.height - 1) + [Strip(segments, cell_length=crop.width)]


class PixelView(ImagePane):
    """The image above its caption, in sixel or kitty graphics."""

    DEFAULT_CSS = """
    PixelView { layout: vertical; }
    PixelView > .picture { height: 1fr; width: 1fr; }
    PixelView > .caption { height: auto; }
    """

    def __init__(self, drawing: Literal["sixel", "kitty"], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drawing = drawing
        self.pixels: Pixels | None = None
        self.caption = ""

    def compose(self) -> ComposeResult:
        if self.drawing == "sixel":
            yield SixelCanvas(classes="picture")
        else:
            from textual_image.widget import TGPImage

            yield TGPImage(classes="picture")
        yield Static("", classes="caption")

    def show(self, pixels: Pixels | None, caption: str = "") -> None:
        self.pixels, self.caption = pixels, caption
        self._draw()

    def prepare(self, pixels: Pixels, caption: str) -> None:
        if self.drawing == "sixel":
            canvas = self.query_one(SixelCanvas)
            threading.Thread(target=canvas.encoded, args=(pixels, caption), daemon=True).start()

    def on_resize(self, event: Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        caption = self.query_one(".caption", Static)
        if self.pixels is None:  # a sentence instead of an image, wrapped to the width
            text = self.caption or "waiting for images…"
            caption.update("\n".join(textwrap.wrap(text, max(self.size.width, 1))))
        else:
            caption.update(f"[b]{self.caption}[/b]")
        if self.drawing == "sixel":
            self.query_one(SixelCanvas).draw(self.pixels, self.caption)
            return
        from textual_image.widget import TGPImage

        picture = self.query_one(TGPImage)
        cols, rows = picture.content_size.width, picture.content_size.height
        if self.pixels is None or cols < 1 or rows < 1:
            picture.image = None
            return
        cell_width, cell_height = cell_pixels()
        width, height = cols * cell_width, rows * cell_height
        picture.image = fit_into(self.pixels(width, height), width, height)
