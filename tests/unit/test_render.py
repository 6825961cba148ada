"""Terminal images: the half-block lines must say exactly what Rich's own ANSI decoder reads
from term-image's output, every pixel shown, at the size the widget has."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console
from rich.text import Text

from salal_tui.render import fit_scale, half_block_ansi, image_strips


def rich_reading(ansi: str, width: int) -> list[list[tuple[str, object, object]]]:
    console = Console(color_system="truecolor", force_terminal=True, width=width)
    lines = console.render_lines(Text.from_ansi(ansi, no_wrap=True), pad=False)
    return [
        [
            (c, seg.style.color if seg.style else None, seg.style.bgcolor if seg.style else None)
            for seg in line
            for c in seg.text
        ]
        for line in lines
    ]


@pytest.mark.parametrize("shape", [(32, 32), (17, 9), (5, 40)])
def test_strips_match_richs_ansi_decoder(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    pixels[:4, :4] = 7  # a run of one colour, which term-image writes as one segment
    strips = image_strips(pixels, 64, 32)
    ours = [
        [
            (c, seg.style.color if seg.style else None, seg.style.bgcolor if seg.style else None)
            for seg in strip
            for c in seg.text
        ]
        for strip in strips
    ]
    assert ours == rich_reading(half_block_ansi(pixels, 64, 32), 200)


def test_a_32px_image_is_upscaled_whole_and_every_pixel_shows() -> None:
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[::2, ::2] = 255  # a checkerboard of single pixels
    strips = image_strips(pixels, 66, 33)
    assert fit_scale(32, 32, 66, 33) == 2.0
    assert len(strips) == 32 and all(s.cell_length == 64 for s in strips)
    # At scale 2 a cell is one source pixel: row 0 alternates white and black, 2 cells each.
    cells = [seg.style.bgcolor.triplet for seg in strips[0] for _ in seg.text]
    assert [tuple(c) for c in cells[:4]] == [(255, 255, 255)] * 2 + [(0, 0, 0)] * 2


def test_a_large_image_shrinks_to_fit() -> None:
    pixels = np.full((300, 200, 3), 128, np.uint8)
    strips = image_strips(pixels, 40, 20)
    assert len(strips) <= 20 and max(s.cell_length for s in strips) <= 40


def test_pixel_mode_enlarges_by_whole_factors_into_a_canvas_of_the_pane() -> None:
    from salal_tui.widgets.pixel_view import fit_into

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    canvas = np.asarray(fit_into(small, 390, 325))
    assert canvas.shape == (325, 390, 3)
    left = (390 - 320) // 2  # ten times as large, centred at the top
    assert (canvas[:320, left : left + 320] == np.kron(small, np.ones((10, 10, 1)))).all()
    assert not canvas[320:].any() and not canvas[:, :left].any()


def test_images_blocks_asks_nothing_and_pixels_without_a_terminal_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from salal_core.errors import SalalError
    from salal_tui import graphics

    asked: list[bool] = []
    monkeypatch.setattr(graphics, "probe_terminal", lambda: asked.append(True))
    assert graphics.choose_drawing("blocks") == "blocks" and not asked
    assert graphics.choose_drawing("auto") == "blocks" and asked  # nothing answered
    with pytest.raises(SalalError, match="--images blocks"):
        graphics.choose_drawing("pixels")


def test_kitty_before_0_28_gets_half_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """It answers the kitty graphics query, but cannot show pictures placed with Unicode
    placeholders; a kitty that does not say its version, or Ghostty, keeps kitty graphics."""
    from salal_core.errors import SalalError
    from salal_tui import graphics

    assert graphics.parse_kitty_version("\x1bP>|kitty(0.26.5)\x1b\\") == (0, 26, 5)
    assert graphics.parse_kitty_version("\x1bP>|ghostty 1.1.3\x1b\\") is None
    monkeypatch.setattr(graphics, "probe_terminal", lambda: "kitty")
    for version, auto in (((0, 26, 5), "blocks"), ((0, 35, 2), "kitty"), (None, "kitty")):
        monkeypatch.setattr(graphics, "kitty_version", lambda v=version: v)
        assert graphics.choose_drawing("auto") == auto
    monkeypatch.setattr(graphics, "kitty_version", lambda: (0, 26, 5))
    with pytest.raises(SalalError, match=r"kitty 0\.26\.5 .* --images blocks"):
        graphics.choose_drawing("pixels")


def test_salal_tui_images_pixels_off_a_terminal_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from salal_tui.__main__ import main

    assert main(["--images", "pixels", "--data", "nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sixel" in err and "--images blocks" in err


def test_an_image_being_encoded_ahead_is_waited_for_not_encoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key pressed while `prepare` encodes the next image waits for that encoding: sixel
    costs ~200 ms a photo, and doing it twice would fight the thread for the interpreter."""
    import threading

    from textual.geometry import Size

    from salal_tui.widgets import pixel_view

    calls: list[str] = []
    started, release = threading.Event(), threading.Event()

    def slow(pixels: object, cols: int, rows: int) -> str:
        calls.append(f"{cols}x{rows}")
        started.set()
        release.wait(5)
        return "sixel data"

    monkeypatch.setattr(pixel_view, "sixel_of", slow)

    class Canvas(pixel_view.SixelCanvas):
        @property
        def content_size(self) -> Size:
            return Size(10, 5)

    canvas = Canvas()
    ahead = threading.Thread(target=canvas.encoded, args=(None, "#1"))
    ahead.start()
    assert started.wait(5)
    shown: list[str | None] = []
    key = threading.Thread(target=lambda: shown.append(canvas.encoded(None, "#1")))
    key.start()
    key.join(0.1)
    assert key.is_alive()  # waiting, not encoding
    release.set()
    ahead.join(5)
    key.join(5)
    assert calls == ["10x5"] and shown == ["sixel data"]
    assert canvas.encoded(None, "#1") == "sixel data" and calls == ["10x5"]  # cached
