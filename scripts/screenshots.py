"""The README's pictures of salal-tui, taken from a real terminal: xterm on a virtual X display
(tests/xterm.py), once with `--images pixels` (sixel) and once with `--images blocks`, on a
folder of crops of the photograph textual-image ships (Grace Hopper, public domain); then the
grid (`g`) in pixel mode.

    python scripts/screenshots.py      # writes docs/pixels.png, docs/blocks.png, docs/grid.png

Needs Xvfb and xterm, as the real-terminal tests do, and xdotool to press `g`
(`apt-get install xvfb xterm xdotool`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the terminal harness the tests use

from xterm import TOOLS, colours, salal_tui_in_xterm, save, virtual_display  # noqa: E402

SIZE = (110, 34)
# Each picture: its name, the drawing, and the keys typed before it is taken.
PICTURES = [("pixels", "pixels", ()), ("blocks", "blocks", ()), ("grid", "pixels", ("g",))]


def photo_folder(out: Path) -> Path:
    """Twenty-four crops and mirror images of one photograph, as a folder of photos."""
    import textual_image

    photo = Image.open(Path(textual_image.__file__).parent / "gracehopper.jpg").convert("RGB")
    out.mkdir(parents=True)
    for i in range(24):
        inset = 4 * i
        crop = photo.crop((inset, inset, photo.width - inset // 2, photo.height - inset // 3))
        (ImageOps.mirror(crop) if i % 2 else crop).save(out / f"{i:02d}.jpg", quality=92)
    return out


def main() -> None:
    missing = [name for name in ("Xvfb", "xterm") if TOOLS[name] is None]
    missing += [] if shutil.which("xdotool") else ["xdotool"]
    if missing:
        raise SystemExit(f"needs {', '.join(missing)}: apt-get install xvfb xterm xdotool")
    work = Path(tempfile.mkdtemp())
    photos = photo_folder(work / "photos")
    (ROOT / "docs").mkdir(exist_ok=True)
    with virtual_display() as display:
        for picture, images, keys in PICTURES:
            args = [
                "--data", str(photos), "--out", str(work / picture), "--preset", "cpu",
                "--device", "cpu", "--classes", "person,other", "--cache-dir", str(work / "c"),
                "--images", images,
            ]  # fmt: skip
            shot = salal_tui_in_xterm(display, args, SIZE, lambda s: colours(s) > 150, keys=keys)
            save(shot, ROOT / "docs" / f"{picture}.png")
            print(f"docs/{picture}.png")


if __name__ == "__main__":
    main()
