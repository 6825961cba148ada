"""Where a screen draws its image: half-blocks (`ImageView`) or real pixels (`PixelView`),
chosen once, before the app starts, by `graphics.choose_drawing`; panes.py builds the one it
chose."""

from __future__ import annotations

from textual.widget import Widget

from ..render import Pixels


class ImagePane(Widget):
    """One image and its caption, as large as the pane; `prepare` builds the next one ahead."""

    def show(self, pixels: Pixels | None, caption: str = "") -> None:
        """Draw the image `pixels` gives, or the caption alone as a sentence when None."""
        raise NotImplementedError

    def prepare(self, pixels: Pixels, caption: str) -> None:
        """Build what showing this image needs, so that showing it next costs nothing."""
        raise NotImplementedError
