"""The shapes of folder a tester gave --data: class folders with no train/ level, class folders
that are links, and a single class."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from helpers import CLASSES, ROUNDS, labels_by_item, tiny_cli, tiny_config, write_image_folder
from salal_core.cli.main import main
from salal_core.data.load import load_for_run, read_source
from salal_core.data.skipped import SkippedFile
from salal_core.events import Notice, Recorder


def class_folders(root: Path, per_class: int = 3) -> Path:
    """`root/<class>/*.png`, as torchvision's ImageFolder reads them: no train/ level."""
    labeled = write_image_folder(root.parent / "labeled", per_class, 0)
    shutil.copytree(labeled / "train", root)
    return root


def test_class_folders_without_a_train_level_are_the_training_split(tmp_path: Path) -> None:
    photos = class_folders(tmp_path / "photos")
    data = read_source(photos, 32)
    assert data.layout == "class folders" and data.class_names == sorted(CLASSES)
    assert len(data.train) == 12 and len(data.test) == 0
    red = data.train.ids.index("red/0000.png")
    assert data.class_names[data.train.labels[red]] == "red"
    assert np.bincount(data.train.labels).tolist() == [3, 3, 3, 3]
    images = load_for_run(tiny_config(photos, tmp_path / "c"))  # was: "no class folders"
    assert images.class_names == sorted(CLASSES) and images.has_labels


def test_classes_named_for_folders_that_are_not_classes_label_nothing_by_folder(
    tmp_path: Path,
) -> None:
    """A pool kept in folders by date: `--classes` says the folders are not the classes, and
    the folders are read as a pool is, each image once."""
    photos = class_folders(tmp_path / "photos")
    shutil.copy(photos / "red" / "0000.png", photos / "blue" / "copy.png")
    assert len(read_source(photos, 32).train) == 13  # taken as classes, each copy is kept
    rec = Recorder()
    images = load_for_run(tiny_config(photos, tmp_path / "c"), ("cat", "dog"), emit=rec)
    assert images.class_names == ["cat", "dog"] and not images.has_labels
    assert len(images.train) == 12 and images.layout == "pool"
    copy = {"blue/copy.png", "red/0000.png"} - set(images.train.ids)
    assert [s for s in images.skipped if s.reason == "duplicate"] == [
        SkippedFile(copy.pop(), "duplicate")
    ]
    assert (
        "the folders of photos (blue, green, red, yellow) are not the classes named (cat, dog): "
        "no image is labeled by its folder; 1 duplicate skipped"
    ) in [n.message for n in rec.of(Notice)]


def test_a_run_says_which_folders_it_takes_as_classes_and_labels_by_them(
    tmp_path: Path, capsys
) -> None:
    """Folders by date, camera or raw/processed look like class folders: the run says what it
    took from them, and how to say they are not classes."""
    photos = class_folders(tmp_path / "photos", per_class=5)
    rec = Recorder()
    config = tiny_config(photos, tmp_path / "c")
    images = load_for_run(config, tuple(sorted(CLASSES)), emit=rec)  # the folders' own names
    assert images.has_labels and not rec.of(Notice)
    out = tmp_path / "run"
    assert main(tiny_cli("run", photos, out, tmp_path / "c", *ROUNDS, "--budget", "0.4")) == 0
    assert (
        "the folders blue, green, red, yellow of photos are taken as classes, and 20% of their "
        "images as labels to start with; if they are not classes, name the classes with "
        "--classes"
    ) in " ".join(capsys.readouterr().err.split())
    assert len(labels_by_item(out, "initial")) == 4


def test_class_folders_that_are_links_are_read_and_a_link_loop_is_skipped(
    tmp_path: Path,
) -> None:
    elsewhere = write_image_folder(tmp_path / "elsewhere", per_class_train=2, per_class_test=1)
    root = tmp_path / "f"
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split).mkdir(parents=True, exist_ok=True)
            (root / split / name).symlink_to(elsewhere / split / name, target_is_directory=True)
    (root / "train" / "up").symlink_to("..")  # a loop: walked once
    data = read_source(root, 32)  # was: "no images found"
    assert data.class_names == sorted(CLASSES)
    assert len(data.train) == 8 and len(data.test) == 4
    assert data.skipped == [SkippedFile("train/up", "symlink loop")]
    assert data.original_path(0) == root / data.train.ids[0]


def test_a_single_class_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    root = write_image_folder(tmp_path / "f", per_class_train=3, per_class_test=1)
    for name in CLASSES[1:]:
        shutil.rmtree(root / "train" / name)
        shutil.rmtree(root / "test" / name)
    assert main(tiny_cli("run", root, tmp_path / "run", tmp_path / "c")) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "salal-core: error: f has one class (red); a classifier needs at least two classes: "
        "add a folder of images for another class"
    )
    assert "Traceback" not in err and not (tmp_path / "run" / "summary.json").exists()
