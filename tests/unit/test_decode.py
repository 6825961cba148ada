"""Images a tester found decoded wrong or not at all, for the model and on screen alike: 16-bit
PNGs, EXIF orientation, TIFF, every mode to 8-bit RGB, and a 100-megapixel file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import write_image_folder
from salal_core.data.decode import MAX_PIXELS
from salal_core.data.load import read_source
from salal_core.data.skipped import SkippedFile
from salal_tui.originals import load_original

RED, BLUE = (220, 30, 30), (30, 30, 220)


def model_copy(root: Path, name: str) -> np.ndarray:
    """The model's 32x32 copy of `train/red/<name>`."""
    data = read_source(root, 32)
    return data.train.images[data.train.ids.index(f"train/red/{name}")]


def test_a_16_bit_png_is_scaled_to_8_bits_not_white(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", per_class_train=1, per_class_test=0)
    path = root / "train" / "red" / "deep.png"
    Image.fromarray(np.full((40, 40), 20_000, np.uint16)).save(path)  # 20,000 of 65,535
    assert Image.open(path).mode.startswith("I")
    assert (model_copy(root, "deep.png") == 78).all()  # 20,000 / 257, where it was 255
    assert (load_original(path, 60, 60) == 78).all()


def test_exif_orientation_turns_the_image_for_the_model_and_on_screen(tmp_path: Path) -> None:
    """Stored 40 wide, red left and blue right, with orientation 6 (turn 90° clockwise to
    show): upright it is 20 wide and 40 tall, red on top."""
    root = write_image_folder(tmp_path / "f", per_class_train=1, per_class_test=0)
    path = root / "train" / "red" / "turned.jpg"
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=95, exif=exif)
    for upright in (model_copy(root, "turned.jpg"), load_original(path, 60, 60)):
        height = upright.shape[0]
        top, bottom = upright[: height // 3].mean((0, 1)), upright[-height // 3 :].mean((0, 1))
        assert top[0] > 180 and top[2] < 70, top
        assert bottom[2] > 180 and bottom[0] < 70, bottom
    assert load_original(path, 60, 60).shape == (40, 20, 3)


def test_tiff_and_every_mode_become_8_bit_rgb(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", per_class_train=1, per_class_test=0)
    red = root / "train" / "red"
    Image.new("RGB", (32, 32), RED).save(red / "plain.tif")
    Image.fromarray(np.full((32, 32), 65_535, np.uint16)).save(red / "deep.tiff")
    Image.new("LA", (32, 32), (0, 0)).save(red / "clear.png")  # transparent: laid on white
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(red / "clear-rgba.png")
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.save(red / "clear-palette.png", transparency=0)
    Image.new("CMYK", (32, 32), (0, 0, 0, 0)).save(red / "cmyk.jpg")  # no ink: white
    expected = {
        "plain.tif": RED,
        "deep.tiff": (255, 255, 255),
        "clear.png": (255, 255, 255),
        "clear-rgba.png": (255, 255, 255),
        "clear-palette.png": (255, 255, 255),
        "cmyk.jpg": (255, 255, 255),
    }
    data = read_source(root, 32)
    assert data.skipped == []
    for name, colour in expected.items():
        drawn = data.train.images[data.train.ids.index(f"train/red/{name}")]
        assert np.abs(drawn.astype(int) - colour).max() <= 2, name
        shown = load_original(red / name, 60, 60)
        assert shown is not None and np.abs(shown.astype(int) - colour).max() <= 2, name


@pytest.mark.parametrize("pillow_limit", ["default", "switched off"])
def test_a_100_megapixel_png_is_skipped_and_named_without_pillow_s_warning(
    tmp_path: Path, pillow_limit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the stated limit, a file is skipped as too large, however Pillow is set; the screen
    falls back to the model's copy. Pillow's raw DecompressionBombWarning is never printed."""
    if pillow_limit == "switched off":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    root = write_image_folder(tmp_path / "f", per_class_train=1, per_class_test=0)
    huge = root / "train" / "red" / "huge.png"
    Image.new("1", (10_000, 10_000)).save(huge)  # 100 megapixels, 12 kB
    assert MAX_PIXELS < 10_000 * 10_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_source(root, 32)
        shown = load_original(huge, 60, 60)
    assert data.skipped == [SkippedFile("train/red/huge.png", "too large")]
    assert len(data.train) == 4 and shown is None
    assert [str(w.message) for w in caught] == []
