"""The image pane for the drawing the app chose: half-blocks or real pixels."""

from __future__ import annotations

from typing import Any

from ..graphics import Drawing
from .image_pane import ImagePane
from .image_view import ImageView
from .pixel_view import PixelView


def image_pane(drawing: Drawing, **kwargs: Any) -> ImagePane:
    """The pane for this drawing: half-blocks, or real pixels."""
    if drawing == "blocks":
        return ImageView(**kwargs)
    return PixelView(drawing, **kwargs)
