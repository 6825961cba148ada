"""Keypress-to-next-image latency in salal-tui while the engine trains beside it.

Drives the real app headless (Textual's run_test) with key presses sent the way the terminal
driver sends them, the engine fine-tuning the whole time, and prints percentiles as JSON.
`--runner alone` is what salal-tui does: the run's private service holds the engine (in a child
process) and the app joins it, so that every answer is a round trip over the socket and every
image comes through it. For comparison, `--runner process` has the app hold the run and its
engine child itself, with no socket; `--runner thread` runs the engine in a thread of the app's
own process; `--runner service` serves the run with `salal-core serve` in a process of its own
and joins it as `salal-tui --join` does. `--photos N` draws 600x500
photos (the pack's images enlarged, written as a folder first) instead of the pack's 32x32
images; `--images sixel` forces the pixel renderer, sixel encoding included, with a pane of
10x20-pixel cells, as a headless app has.

    python benchmarks/keypress_latency.py --data ../shared/datasets/cifar10-jpeg.tar.gz
    python benchmarks/keypress_latency.py --data PACK --photos 400 --images sixel
    python benchmarks/keypress_latency.py --data PACK --runner service
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from textual import events
from textual._time import get_time  # the clock Textual stamps events with

from salal_core.config import preset, with_overrides
from salal_core.events import DataLoaded, Event
from salal_core.parallel.worker import EngineProcess
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.summary import RunSummary
from salal_core.team.endpoint import socket_path
from salal_tui.app import SalalApp
from salal_tui.bridge import EventBridge
from salal_tui.desk import JoinedDesk
from salal_tui.launch import label_alone

PHOTO = (600, 500)


def photo_folder(pack: Path, out: Path, per_class: int) -> Path:
    """`per_class` training and `per_class // 4` test images of each of the pack's classes,
    enlarged to 600x500 JPEGs (bicubic) in class folders: photos for the pixel renderer to
    draw at its pane's size, with the ground truth the engine starts from, as on the pack."""
    quota = {"train": per_class, "test": max(1, per_class // 4)}
    written: dict[tuple[str, str], int] = {}
    with tarfile.open(pack) as tar:
        for member in tar:
            split, name = Path(member.name).parts[0], Path(member.name).parent.name
            if not member.isfile() or split not in quota:
                continue
            n = written.get((split, name), 0)
            if n == quota[split]:
                continue
            data = tar.extractfile(member)
            assert data is not None
            with Image.open(data) as image:
                enlarged = image.convert("RGB").resize(PHOTO, Image.Resampling.BICUBIC)
            target = out / split / name / f"{n:04d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            enlarged.save(target, quality=90)
            written[split, name] = n + 1
    return out


@contextmanager
def served(data: Path, out: Path, args: argparse.Namespace) -> Iterator[None]:
    """`salal-core serve` on a new run of the same settings, until the block ends."""
    flags = f"--preset tiny --device {args.device} --pretrain-epochs 1 --epochs-per-round 40"
    command = [sys.executable, "-m", "salal_core.cli", "serve", "--data", str(data)]
    command += [*flags.split(), "--query-size", str(args.presses), "--budget", "1.0"]
    proc = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not socket_path(out).is_socket():
            if proc.poll() is not None:
                raise SystemExit("salal-core serve did not start")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(60)


async def measure(args: argparse.Namespace) -> dict:
    data = Path(args.data).resolve()
    if args.photos:
        data = photo_folder(data, Path(tempfile.mkdtemp()), args.photos // 10)
    if args.runner == "service":
        out = Path(tempfile.mkdtemp()) / "run"
        with served(data, out, args):
            bridge = EventBridge()
            desk = JoinedDesk(out, "bench", bridge)
            app = SalalApp(desk, bridge, False, desk, drawing=args.images)
            return await drive(app, args)
    config = with_overrides(
        preset("tiny"),
        {
            "data.source": str(data),
            "device": args.device,
            "pretrain.epochs": 1,
            "active.epochs_per_round": 40,
            "active.query_size": args.presses,
            "active.budget": 1.0,  # two batches of presses fit a folder of a few hundred
            "active.lookahead": 2,
        },
    )
    bridge = EventBridge()
    out = Path(tempfile.mkdtemp()) / "run"
    session = open_session(config, out, oracle="human")
    if args.runner == "alone":
        return await drive(label_alone(session, "bench", drawing=args.images), args)
    runner: EngineProcess | InThread
    if args.runner == "process":
        runner = EngineProcess(session, bridge)
    else:

        def emit(event: Event) -> None:  # as the engine process does for the app
            if isinstance(event, DataLoaded):
                session.images.load()
            bridge(event)

        runner = InThread(Engine.for_session(session, emit))
    app = SalalApp(session, bridge, auto=False, runner=runner, drawing=args.images)
    return await drive(app, args)


class InThread:
    """The engine in a thread of the app's process (the app's worker thread runs it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def run(self) -> RunSummary | None:
        return self.engine.run()

    def stop(self) -> None:
        self.engine.stop()

    def close(self) -> None:
        """Nothing else is held: the engine let go of the run when `run` returned."""


async def drive(app: SalalApp, args: argparse.Namespace) -> dict:
    """Type two batches into the app and time each key to its next image."""
    runner = app.runner
    assert runner is not None
    latencies: list[float] = []
    idle: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.label_screen

        async def until(ready: Callable[[], bool], every: float) -> None:
            """Wait for the app, or stop with its error if it ended (the engine failed)."""
            while not ready():
                if app.return_code is not None:
                    raise SystemExit(f"the app ended: {app.error}")
                await pilot.pause(every)

        await until(lambda: screen.shown is not None, 0.1)  # pretraining and round 0 first
        keys = screen.query_one("ClassList").keys
        driver = app._driver
        training = 0

        async def type_batch(into: list[float]) -> int:
            """Send keys the way the terminal driver does, `gap` apart; the app reports when
            each answer's next image has been drawn."""
            drawn: list[float] = []
            screen.answer_drawn = lambda t: drawn.append((get_time() - t) * 1000)
            busy = 0
            for i in range(args.presses):
                driver.send_message(events.Key(keys[i % len(keys)], keys[i % len(keys)]))
                await asyncio.sleep(args.gap)
                busy += "training" in str(screen.query_one("#phase").render())
            await until(lambda: len(drawn) >= args.presses, 0.05)
            into.extend(drawn)
            return busy

        # The first batch: the engine waits for it (idle). Then round 1 trains while the
        # second batch, asked ahead, is labeled: that is the figure that matters.
        await type_batch(idle)
        await until(lambda: "training" in str(screen.query_one("#phase").render()), 0.02)
        training = await type_batch(latencies)
        runner.stop()
    latencies.sort()
    return {
        "presses": len(latencies),
        "while_training": training,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "max_ms": round(latencies[-1], 2),
        "device": args.device,
        "runner": args.runner,
        "images": args.images,
        "photos": args.photos,
        "gap_s": args.gap,
        "idle_p50_ms": round(statistics.median(idle), 2),
        "idle_p95_ms": round(sorted(idle)[int(0.95 * (len(idle) - 1))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--runner", choices=["alone", "process", "thread", "service"], default="alone"
    )
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument(
        "--images", choices=["blocks", "sixel"], default="blocks", help="the renderer to force"
    )
    parser.add_argument(
        "--photos", type=int, default=0, help="draw N 600x500 photos made from the pack"
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.25,
        help="seconds between presses: 0.25 is a fast labeler (four images a second); "
        "0.05 is a burst no one sustains, for the queueing it causes",
    )
    print(json.dumps(asyncio.run(measure(parser.parse_args()))))


if __name__ == "__main__":
    main()
