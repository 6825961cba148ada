"""Which way images are drawn: real pixels (sixel, or the kitty graphics protocol) where the
terminal speaks them, half-blocks everywhere else.

The terminal is asked before Textual starts: its replies come on stdin, and Textual's input
thread would swallow them. textual-image asks (a device-attributes query for sixel, a kitty
graphics query; 0.1 s each, so a terminal that answers neither, or mosh, costs a fifth of a
second) and reads the cell size in pixels that drawing to a pane's pixel size needs.

kitty before 0.28 answers the kitty graphics query but cannot show textual-image's pictures,
which are placed with Unicode placeholders (kitty 0.28); it is asked its version (XTVERSION,
0.1 s at most) and gets half-blocks.
"""

from __future__ import annotations

import re
import sys
from typing import Literal, get_args

from salal_core.errors import SalalError

ImagesOption = Literal["auto", "pixels", "blocks"]
Drawing = Literal["sixel", "kitty", "blocks"]
IMAGES_OPTIONS: tuple[str, ...] = get_args(ImagesOption)
KITTY_PLACEHOLDERS = (0, 28)  # the first kitty that shows textual-image's kitty pictures


def choose_drawing(option: ImagesOption) -> Drawing:
    """`blocks` asks nothing; `auto` takes pixels where the terminal answers, else blocks;
    `pixels` insists, and is one line of error where nothing answers."""
    if option == "blocks":
        return "blocks"
    found = probe_terminal()
    if found == "kitty":
        version = kitty_version()
        if version is not None and version < KITTY_PLACEHOLDERS:
            if option == "pixels":
                raise SalalError(
                    f"kitty {'.'.join(map(str, version))} cannot show salal's pictures (they "
                    "need kitty 0.28 or later); update kitty, or use --images blocks"
                )
            return "blocks"
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


def kitty_version() -> tuple[int, ...] | None:
    """The version kitty gives to XTVERSION; None where the terminal does not say it is kitty
    (Ghostty, say) or says nothing in 0.1 s."""
    from textual_image._terminal import TerminalError, capture_terminal_response

    if sys.__stdout__ is None or not sys.__stdout__.isatty():
        return None
    try:
        with capture_terminal_response("\x1bP>|", "\x1b\\", 0.1) as response:
            sys.__stdout__.write("\x1b[>0q")
            sys.__stdout__.flush()
    except (TerminalError, TimeoutError):
        return None
    return parse_kitty_version(response.sequence)


def parse_kitty_version(reply: str) -> tuple[int, ...] | None:
    """`ESC P >| kitty(0.26.5) ESC \\` -> (0, 26, 5); None for any other terminal's reply."""
    found = re.search(r"kitty\((\d+(?:\.\d+)*)\)", reply)
    return tuple(int(part) for part in found.group(1).split(".")) if found else None
