"""The README's pictures of salal-tui, taken from a real terminal: xterm on a virtual X display
(tests/xterm.py), once with `--images pixels` (sixel) and once with `--images blocks`, on a
folder of crops of the photograph textual-image ships (Grace Hopper, public domain).

    python scripts/screenshots.py            # writes docs/pixels.png and docs/blocks.png

Needs Xvfb and xterm (`apt-get install xvfb xterm`), as the real-terminal tests do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the terminal harness the tests use

from xterm import MISSING, colours, salal_tui_in_xterm, save, virtual_display  # noqa: E402

SIZE = (110, 34)


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
    if MISSING:
        raise SystemExit(f"needs {', '.join(MISSING)}: apt-get install xvfb xterm")
    work = Path(tempfile.mkdtemp())
    photos = photo_folder(work / "photos")
    (ROOT / "docs").mkdir(exist_ok=True)
    with virtual_display() as display:
        for images in ("pixels", "blocks"):
            args = [
                "--data", str(photos), "--out", str(work / images), "--preset", "cpu",
                "--device", "cpu", "--classes", "person,other", "--cache-dir", str(work / "c"),
                "--images", images,
            ]  # fmt: skip
            shot = salal_tui_in_xterm(display, args, SIZE, lambda s: colours(s) > 150)
            save(shot, ROOT / "docs" / f"{images}.png")
            print(f"docs/{images}.png")


if __name__ == "__main__":
    main()
