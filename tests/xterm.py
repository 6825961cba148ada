"""salal-tui in a real terminal: xterm, or kitty, on a virtual X display (Xvfb), screenshotted.

Shared by tests/functional/test_real_terminal.py and scripts/screenshots.py (the README's pictures).
xterm's default font draws 6x13-pixel cells; `-ti vt340` with 256 colour registers draws sixel
(its text then has the VT340's 16 colours, so half-blocks are run in xterm's own mode, which
takes 24-bit colour). xterm sets TERM and drops COLORTERM, so salal-tui is given --color.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TOOLS = {name: shutil.which(name) for name in ("Xvfb", "xterm", "kitty")}
MISSING = [name for name, path in TOOLS.items() if path is None]
CELL = (6, 13)
SIXEL = ("-ti", "vt340", "-xrm", "XTerm*numColorRegisters: 256")


@contextmanager
def virtual_display(size: tuple[int, int] = (800, 500)) -> Iterator[str]:
    """An Xvfb display of our own, no TCP; yields its name once it is ready."""
    read, write = os.pipe()
    screen = f"{size[0]}x{size[1]}x24"
    server = subprocess.Popen(
        [str(TOOLS["Xvfb"]), "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", screen],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as answer:
        number = answer.readline().strip()  # Xvfb writes it once it accepts clients
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def screenshot(display: str, cols: int, rows: int, whole: bool = False) -> np.ndarray:
    """The terminal's window (at the top left), RGB; `whole`: the display, for a terminal
    whose cells are its font's size (kitty)."""
    from PIL import ImageGrab

    shot = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
    return shot if whole else shot[: CELL[1] * rows, : CELL[0] * cols]


def colours(shot: np.ndarray) -> int:
    rgb = shot.astype(np.int64)
    return len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]))


def salal_tui_in_xterm(
    display: str,
    args: list[str],
    size: tuple[int, int],
    ready: Callable[[np.ndarray], bool],
    timeout: float = 120,
    keys: Sequence[str] = (),
    kitty: bool = False,
) -> np.ndarray:
    """Run `salal-tui ARGS` in an xterm of `size` cells (sixel mode for --images pixels), or
    in kitty (Mesa's software OpenGL), and return the first screenshot `ready` accepts, taken
    again once the frame has settled; `keys` (xdotool's names) are typed into it first."""
    sixel = "--images" in args and args[args.index("--images") + 1] == "pixels"
    command = [sys.executable, "-m", "salal_tui", *args, "--color", "truecolor"]
    if kitty:
        options = ["remember_window_size=no", "enable_audio_bell=no"]
        options += [f"initial_window_width={size[0]}c", f"initial_window_height={size[1]}c"]
        launch = [str(TOOLS["kitty"]), *(a for o in options for a in ("-o", o)), *command]
    else:
        geometry = f"{size[0]}x{size[1]}+0+0"
        launch = [str(TOOLS["xterm"]), *(SIXEL if sixel else ()), "-geometry", geometry]
        launch += ["-e", *command]
    terminal = subprocess.Popen(
        launch, env={**os.environ, "DISPLAY": display}, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and terminal.poll() is None:
            time.sleep(1.0)
            if ready(screenshot(display, *size, whole=kitty)):
                time.sleep(1.5)  # let the frame settle
                if keys:
                    xdotool = shutil.which("xdotool") or "xdotool"
                    env = {**os.environ, "DISPLAY": display}
                    subprocess.run([xdotool, "key", "--delay", "200", *keys], env=env, check=True)
                    time.sleep(3.0)  # the keys' frames, every picture encoded
                return screenshot(display, *size, whole=kitty)
        raise AssertionError(
            f"salal-tui {' '.join(args)} never drew what was expected"
            + ("" if terminal.poll() is None else f" (it exited with {terminal.returncode})")
        )
    finally:
        os.killpg(terminal.pid, signal.SIGTERM)
        terminal.wait(10)


def save(shot: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(shot).save(path)
