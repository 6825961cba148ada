"""Helpers the tests share: drawn images and folders, tiny configurations, command lines, and
waiting on the app. Fixtures live in conftest.py; test modules import only from here."""

from __future__ import annotations

import importlib.util
import os
import pickle
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image

from salal_core.config import PRESETS, RunConfig, preset, with_overrides
from salal_core.data.device_data import DeviceData
from salal_core.data.identity import content_digest, pixel_digests
from salal_core.data.skipped import SkippedFile
from salal_core.data.sources import ImageSet, Split
from salal_core.events import Recorder
from salal_core.learn.inputs import HeadFeatures
from salal_core.learn.model import Net
from salal_core.learn.pretrain import PretrainCheckpoint
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.store import RunStore
from salal_core.run.summary import CurvePoint, RunSummary

ROOT = Path(__file__).resolve().parents[1]
SHARED_PACK = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CLASSES = ["red", "green", "blue", "yellow"]
PALETTE = np.array([[220, 40, 40], [40, 200, 60], [40, 60, 220], [230, 220, 40]])


def draw(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A class colour, lit from above (a cue for which way is up), with a dark mark top-left."""
    light = np.linspace(1.0, 0.35, size)[:, None, None]
    img = PALETTE[label][None, None, :] * light + rng.normal(0, 12, (size, size, 3))
    img[2:8, 2:12] = 20  # an asymmetric mark, so every quarter turn looks different
    return np.clip(img, 0, 255).astype(np.uint8)


def drawn_data(n: int = 48, device: torch.device | str = "cpu") -> DeviceData:
    """`n` random images with labels of four classes, on `device`, train and test alike."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    split = split_of(images, rng.integers(0, 4, n), [str(i) for i in range(n)])
    return DeviceData(ImageSet(split, split, ["a", "b", "c", "d"], "drawn"), torch.device(device))


def write_image_folder(
    root: Path, per_class_train: int = 12, per_class_test: int = 4, seed: int = 0, fmt: str = "png"
) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class_train), ("test", per_class_test)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(draw(label, rng)).save(folder / f"{i:04d}.{fmt}")
    return root


FORMATS = ["png", "jpg", "webp", "bmp", "gif"]


def random_backbone(path: Path, width: int) -> Path:
    """A pretrain.pt of a seeded, untrained network at `width` under the cpu recipe: the
    backbone the study scripts load, where a test has no time to pretrain one."""
    torch.manual_seed(0)
    config = with_overrides(preset("cpu"), {"model.width": width})
    torch.save(PretrainCheckpoint.of(Net(width, 4), config, {}).to_payload(), path)
    return path


def add_entries_that_are_no_files(root: Path) -> list[SkippedFile]:
    """Entries a tester found under --data that cannot be read as files of their own, beside
    the images: a symlink loop, a dangling link named README, a FIFO, and names that are not
    UTF-8 (on a .txt and on a .png). Returns them as skipped."""
    (root / "loop").symlink_to("loop")
    (root / "README").symlink_to("nowhere")
    os.mkfifo(root / "pipe.png")
    for name in (b"notes-\xff.txt", b"train/red/\xe9t\xe9.png"):
        Image.new("RGB", (32, 32)).save(os.path.join(os.fsencode(root), name), "PNG")
    return [
        SkippedFile("README", "dangling link"),
        SkippedFile("loop", "symlink loop"),
        SkippedFile("notes-\\xff.txt", "name not UTF-8"),
        SkippedFile("pipe.png", "not a regular file"),
        SkippedFile("train/red/\\xe9t\\xe9.png", "name not UTF-8"),
    ]


def write_unlabeled_folder(root: Path, per_class: int = 50, seed: int = 1) -> Path:
    """A pool as people have them: no class folders, nested folders, mixed formats and sizes,
    the class only in the file name (for the tests' eyes), and four files that must be
    skipped: a corrupt JPEG, a duplicate, a 4x4 image and a text file."""
    rng = np.random.default_rng(seed)
    n = 0
    for _ in range(per_class):
        for label, name in enumerate(CLASSES):
            folder = root / f"shoot-{n % 3}" / ("deep" if n % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            side = (32, 48, 64)[n % 3]
            fmt = FORMATS[n % len(FORMATS)]
            Image.fromarray(draw(label, rng, side)).save(folder / f"{n:04d}-{name}.{fmt}")
            n += 1
    (root / "shoot-0" / "broken-red.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("taken in the garden")
    first = next(iter(sorted((root / "shoot-0").glob("0000-*"))))
    (root / "shoot-1" / f"copy-of-{first.name}").write_bytes(first.read_bytes())
    Image.new("RGB", (4, 4), (200, 30, 30)).save(root / "tiny-red.png")
    return root


def write_cifar_batches(folder: Path, per_batch: int = 6) -> np.ndarray:
    """Official-format pickle batches with known pixels; returns the first training image."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        if first is None:
            first = data[0].reshape(3, 32, 32).transpose(1, 2, 0)
        batch = {
            b"data": data,
            b"labels": [i % 10 for i in range(per_batch)],
            b"batch_label": name.encode(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return first


def class_from_name(source_id: str) -> int:
    """The class a test image was drawn as, from its file name (0000-red.png -> 0)."""
    return CLASSES.index(Path(source_id).stem.split("-")[-1])


def tar_folder(folder: Path, out: Path, arcname: str = "pack") -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return out


def photo_archive(root: Path) -> tuple[Path, Path]:
    """Three 160x120 noise photos in `root/photos`, and the same as `root/photos.tar.gz`:
    images whose own bytes are far from the model's 32x32 copy."""
    folder = root / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), np.uint8)).save(folder / f"{i}.png")
    return folder, tar_folder(folder, root / "photos.tar.gz", "photos")


def tiny_config(source: Path, cache: Path, **overrides):
    """The tiny preset narrowed further, so a whole run takes seconds on two cores."""
    base = {
        "device": "cpu",
        "data.source": str(source),
        "data.cache_dir": str(cache),
        "data.train_limit": 0,
        "data.test_limit": 0,
        "model.width": 4,
        "pretrain.epochs": 1,
        "pretrain.optim.batch_size": 32,
        "active.epochs_per_round": 1,
        "active.optim.batch_size": 32,
        "active.query_size": 0.1,
    }
    base.update(overrides)
    return with_overrides(PRESETS["tiny"], base)


def split_of(images: np.ndarray, labels: np.ndarray, ids: list[str]) -> Split:
    """A split of in-memory images, each known by its pixels' digest."""
    return Split(images, np.asarray(labels, np.int64), ids, pixel_digests(images))


def run_engine(config: RunConfig, out: Path, **session: Any) -> tuple[RunSummary, Recorder]:
    """A whole run in this process, every event recorded."""
    rec = Recorder()
    summary = Engine.for_session(open_session(config, out, **session), rec).run()
    return summary, rec


def labels_by_item(run_dir: Path, oracle: str | None = None) -> dict[int, int]:
    """The journal's current labels (item id -> class), optionally of one oracle."""
    store = RunStore(run_dir, create=False, lock=False)
    try:
        return {i: r.label for i, r in store.labels().items() if oracle in (None, r.oracle)}
    finally:
        store.close()


# ---------------------------------------------------------------------------- command lines


def tiny_cli(command: str, data: Path, out: Path | None, cache: Path, *extra: str) -> list[str]:
    """A command line on the tiny preset, narrowed so that it runs in seconds on the CPU."""
    fast = "--device cpu --width 4 --batch-size 32 --train-limit 0 --test-limit 0"
    return [
        command,
        "--data",
        str(data),
        "--preset",
        "tiny",
        *(["--out", str(out)] if out else []),
        "--cache-dir",
        str(cache),
        *fast.split(),
        *extra,
    ]


ROUNDS = ("--pretrain-epochs", "1", "--epochs-per-round", "1", "--query-size", "0.1")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salal_core.cli", *args], capture_output=True, text=True, timeout=300
    )


# ---------------------------------------------------------------------------- the app

SIZE = (120, 40)
# A wait that spans pretraining or a training round: generous, because a loaded two-core
# machine runs them at half speed, and a wait that ends early fails a test that works.
TRAINING_WAIT = 300.0


async def wait_for(pilot: Any, predicate: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


async def summary_text(pilot: Any, app: Any, timeout: float = 90) -> str:
    """Wait for the summary screen to be pushed *and* composed, then return its text.

    The screen becomes `app.screen` a beat before its children mount, so waiting for the
    screen alone races the query (it failed once on a loaded CI machine)."""
    from salal_tui.screens import SummaryScreen

    await wait_for(
        pilot,
        lambda: isinstance(app.screen, SummaryScreen) and bool(app.screen.query("#summary-text")),
        timeout,
    )
    return str(app.screen.query_one("#summary-text").render())


def journal(run_dir: Path) -> dict[int, int]:
    """The human labels in a run's journal, by item id."""
    return labels_by_item(run_dir, "human")


Step = Callable[[Any], Awaitable[None]]


def finished_summary(curve: tuple[CurvePoint, ...], config: RunConfig, **fields: Any) -> RunSummary:
    """A run that spent its budget, with `curve`; `fields` set anything else the test reads."""
    values: dict[str, Any] = {
        "run_dir": "RUN_DIR",
        "preset": "tiny",
        "acquisition": "margin",
        "seed": 0,
        "oracle": "auto",
        "train_size": 100,
        "labeled": curve[-1].labeled,
        "target": curve[-1].labeled,
        "accuracy_source": "test",
        "holdout_every": 5,
        "curve": curve,
        "human_labels": 0,
        "human_agreement": None,
        "stop_reason": "budget",
        "stop_detail": "the label budget is spent",
        "seconds": 1.0,
        "config": config,
    }
    return RunSummary(**{**values, **fields})


def downgrade_to_format_3(db_path: Path) -> None:
    """The run's database as format 3 wrote it: no labeler, no client id."""
    db = sqlite3.connect(db_path)
    db.executescript(
        "DROP INDEX journal_client; ALTER TABLE journal DROP COLUMN client_id;"
        "ALTER TABLE journal DROP COLUMN labeler; UPDATE meta SET value='3' WHERE key='format';"
    )
    db.commit()
    db.close()


def load_benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ as a module, so that its tests call its functions; its own
    imports of benchmarks/ modules resolve as they do when the script runs."""
    scripts = str(ROOT / "benchmarks")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None  # narrows the types; a path always has them
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def head_features(name: str, train: torch.Tensor) -> HeadFeatures:
    """A candidate input of a backbone run's head over `train`, its first rows the test split."""
    return HeadFeatures.standardized(name, train, train[:4])


def copy_test_images_in_run_order(images: ImageSet, test_folder: Path, out: Path) -> Path:
    """The run's test images copied flat into `out`, named in the run's test order (000.png,
    001.png, ...), so `predict`'s sorted rows line up with the run's own test predictions."""
    out.mkdir()
    files = {content_digest(p.read_bytes()): p for p in test_folder.rglob("*.png")}
    for i, digest in enumerate(images.test.digests):
        (out / f"{i:03d}.png").write_bytes(files[digest.split("~")[0]].read_bytes())
    return out


def predictions_match(rows_csv: str, probs: torch.Tensor, class_names: list[str]) -> None:
    """`predict`'s CSV (sorted by file name) gives each image the run's class and confidence."""
    rows = sorted(r.split(",") for r in rows_csv.strip().splitlines()[1:])
    assert len(rows) == len(probs)
    for (name, predicted, confidence), p in zip(rows, probs, strict=True):
        assert predicted == class_names[int(p.argmax())], name
        assert abs(float(confidence) - float(p.max())) <= 2e-4, name
