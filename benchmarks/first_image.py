"""How long a person waits for the first image on a folder of unlabeled photos, against how long
the pretrained backbone's embedding pass takes: the first start (nothing cached) and a second
one (decoded images and features cached).

The session is opened by the factory `salal-tui --data FOLDER --classes ...` opens it through,
with a person's defaults (no --preset: the `auto` backbone, Lite0 where `salal[lite0]` is
installed), on the CPU, in this process. The
clock starts as the session opens, before the engine loads anything; the engine is stopped once
it is ready and waits for answers (the images loaded, their features in, the seeded samples
asked), which is when the head can first be fit. A flat folder of the pack's training images
stands in for the photos (their class names are given, their labels are not).

    python benchmarks/first_image.py --pack ../shared/datasets/cifar10-jpeg.tar.gz --images 1000
    python benchmarks/first_image.py --images 1000 --app     # the same through the app

`--app` runs `salal-tui` itself, headless at 120×40 (Textual's test driver): its private
service, the engine in a process of its own, and the label screen, timed from the command line
being read until the first image is drawn. Starting Python and importing the app (torch,
Textual) comes before that: it is timed apart, in a fresh interpreter.

Prints a table on stderr and the figures as JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from folder_cuts import cut_pack
from salal_core.cli.main import build_parser
from salal_core.cli.options import session_from_args
from salal_core.events import EmbeddingProgress, Event, PhaseChanged, QueryReady, RunFinished
from salal_core.run.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
WAIT = 1800.0  # seconds: the slowest backbone on 2 cores embeds a few thousand images in minutes


class Timeline:
    """The engine's events with the seconds since the session opened."""

    def __init__(self) -> None:
        self.opened = time.perf_counter()
        self.events: list[tuple[float, Event]] = []
        self.changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.changed:
            self.events.append((time.perf_counter() - self.opened, event))
            self.changed.notify_all()

    def first(self, kind: type[Event], **fields: object) -> float | None:
        for when, event in self.events:
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
                return when
        return None


def flat_folder(pack: Path, out: Path, images: int) -> tuple[Path, list[str]]:
    """About `images` of the pack's training images, as many of each class, in one folder with
    no class folders; the class names."""
    with tarfile.open(pack) as tar:
        names = [Path(i.name).parts for i in tar if i.isfile()]
        classes = sorted({parts[-2] for parts in names if len(parts) >= 3})
    per_class = max(1, images // len(classes))
    cut = cut_pack(pack, out / f"cut-{per_class}", per_class, len(classes))
    flat = out / f"photos-{per_class * len(classes)}"
    if not flat.exists():
        flat.mkdir(parents=True)
        for source in sorted((cut / "train").glob("*/*")):
            shutil.copy(source, flat / f"{source.parent.name}-{source.name}")
    return flat, classes


def start_once(folder: Path, classes: list[str], cache: Path, run_dir: Path) -> dict[str, Any]:
    """One session from opening until the engine waits for answers: when each thing came."""
    command = ["run", "--data", str(folder), "--classes", ",".join(classes), "--device", "cpu"]
    command += ["--cache-dir", str(cache), "--out", str(run_dir)]
    timeline = Timeline()

    def ready() -> bool:
        return timeline.first(PhaseChanged, phase="waiting") is not None

    session = session_from_args(build_parser().parse_args(command), oracle="human")
    engine = Engine.for_session(session, timeline)
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    try:
        with timeline.changed:
            if not timeline.changed.wait_for(ready, WAIT):
                raise SystemExit("the engine was not ready in time")
    finally:
        engine.stop()
        thread.join(WAIT)
    passes = [e for _, e in timeline.events if isinstance(e, EmbeddingProgress)]
    (finished,) = [e for _, e in timeline.events if isinstance(e, RunFinished)]
    return {
        "backbone": finished.summary.config.model.backbone,  # what `auto` chose
        "embedding_pass_seconds": passes[-1].seconds if passes else 0.0,  # 0: from the cache
        "embedding_began_seconds": timeline.first(EmbeddingProgress, done=0),
        "first_image_seconds": timeline.first(QueryReady),
        "ready_seconds": timeline.first(PhaseChanged, phase="waiting"),
    }


def start_app(folder: Path, classes: list[str], cache: Path, run_dir: Path) -> dict[str, Any]:
    """`salal-tui --data FOLDER --classes ... --out RUN_DIR` as its `label` command builds it,
    until its label screen draws the first image; then the person quits (q, y)."""
    # Imported here, not above: the engine-only mode needs no Textual.
    from salal_tui import __main__ as tui
    from salal_tui import launch

    command = ["--data", str(folder), "--classes", ",".join(classes), "--device", "cpu"]
    command += ["--cache-dir", str(cache), "--out", str(run_dir)]
    opened = time.perf_counter()
    session = session_from_args(tui.build_parser().parse_args(command), oracle="human")
    app = launch.label_alone(session, "bench")
    shown: dict[str, float] = {}

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.perf_counter() + WAIT
            while app.label_screen.shown is None:
                if time.perf_counter() > deadline:
                    raise SystemExit("no image was drawn in time")
                await pilot.pause(0.01)
            shown["first"] = time.perf_counter() - opened
            await pilot.press("q", "y")
            while app.return_code is None:
                await pilot.pause(0.05)

    asyncio.run(drive())
    return {"first_image_seconds": shown["first"]}


def app_import_seconds() -> float:
    """A fresh interpreter's start and import of the app, as `salal-tui` pays before anything."""
    started = time.perf_counter()
    code = "import salal_tui.__main__, salal_tui.launch, salal_core.run.factory"
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", type=Path, default=PACK)
    p.add_argument("--images", type=int, default=1000, help="photos in the folder")
    p.add_argument("--out", type=Path, help="where the folder is cut (default: a temporary one)")
    p.add_argument("--app", action="store_true", help="time salal-tui itself, headless")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as scratch:
        out = (args.out or Path(scratch)).resolve()
        folder, classes = flat_folder(args.pack, out, args.images)
        photos = len(list(folder.iterdir()))
        cache = Path(scratch) / "cache"  # fresh: the first start decodes and embeds
        start = start_app if args.app else start_once
        starts = {
            which: start(folder, classes, cache, Path(scratch) / f"run-{which}")
            for which in ("first", "second")
        }
    if args.app:
        imports = app_import_seconds()
        for which, timed in starts.items():
            console.print(
                f"salal-tui, {which} start, {photos} photos: the first image drawn "
                f"{timed['first_image_seconds']:.1f} s after the command line is read"
            )
        console.print(f"starting Python and importing the app: {imports:.1f} s before that")
        report = {"images": photos, "app": True, "import_seconds": imports, "starts": starts}
        json.dump(report, sys.stdout)
        print()
        return report
    table = Table(title=f"{photos} photos: seconds from the session opening")
    for column in ("start", "backbone", "first image", "embedding pass", "ready to fit"):
        table.add_column(column, justify="right" if column != "start" else "left")
    for which, start in starts.items():
        seconds = start["embedding_pass_seconds"]
        table.add_row(
            which,
            start["backbone"],
            f"{start['first_image_seconds']:.1f}",
            f"{seconds:.1f}" if seconds else "cached",
            f"{start['ready_seconds']:.1f}",
        )
    console.print(table)
    report = {"images": photos, "starts": starts}
    json.dump(report, sys.stdout)
    print()
    return report


if __name__ == "__main__":
    main()
