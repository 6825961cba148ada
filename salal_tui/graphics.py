"""Which way images are drawn: real pixels (sixel, or the kitty graphics protocol) where the
terminal speaks them, half-blocks everywhere else.

The terminal is asked before Textual starts: its replies come on stdin, and Textual's input
thread would swallow them. textual-image asks (a device-attributes query for sixel, a kitty
graphics query; 0.1 s each, so a terminal that answers neither, or mosh, costs a fifth of a
second) and reads the cell size in pixels that drawing to a pane's pixel size needs.
"""

from __future__ import annotations

from typing import Literal, get_args

from salal_core.errors import SalalError

ImagesOption = Literal["auto", "pixels", "blocks"]
Drawing = Literal["sixel", "kitty", "blocks"]
IMAGES_OPTIONS: tuple[str, ...] = get_args(ImagesOption)


def choose_drawing(option: ImagesOption) -> Drawing:
    """`blocks` asks nothing; `auto` takes pixels where the terminal answers, else blocks;
    `pixels` insists, and is one line of error where nothing answers."""
    if option == "blocks":
        return "blocks"
    found = probe_terminal()
    if found is None and option == "pixels":
        raise SalalError(
            "this terminal answered neither sixel nor the kitty graphics protocol (or "
            "textual-image is missing: pip install 'salal[pixels]'); use --images blocks"
        )
    return found or "blocks"


def probe_terminal() -> Drawing | None:
    """Ask the terminal (once a process: textual-image asks as it is imported); None where
    nothing answers, or textual-image is not installed."""
    try:
        import textual_image.renderable as renderable
        from textual_image._terminal import get_cell_size
    except ImportError:
        return None

    get_cell_size()  # asked now, while the answer can still be read, and kept
    if renderable.Image is renderable.SixelImage:
        return "sixel"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    return None
