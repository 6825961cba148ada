"""Keys per label and the app's time per label: one image at a time against the grid.

Drives the real app headless (Textual's run_test) with the engine training beside it, on a
folder whose class folders give the truth, and a simulated person who answers every image
correctly: first `--labels` images one at a time, then as many again in the grid, in one run
(one pretraining). One at a time, that is one class key per label, whatever the model. In the
grid, the person types the tiles below the bar, then looks at the guesses at or above it: a
wrong one is reached with the arrow keys and typed, and the accept key takes the rest. Every
accepted guess is right, because the person corrected the wrong ones first. The app's time is
the wall time of each key press until the app is idle again, summed.

    python benchmarks/grid_labeling.py                      # the digits (needs scikit-learn)
    python benchmarks/grid_labeling.py --data FOLDER --labels 300 --bar 0.8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from salal_core.config import preset, with_overrides
from salal_core.run.factory import open_session
from salal_tui.launch import label_alone
from salal_tui.screens import GridScreen
from salal_tui.screens.grid import BAR_STEPS
from salal_tui.widgets.grid_tile import confidence

View = Literal["single", "grid"]


class Tally:
    """Keys pressed, labels given and the app's time, for one view."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.keys = self.typed = self.accepted = 0
        self.app_seconds = 0.0
        self.started = time.perf_counter()

    def result(self) -> dict[str, Any]:
        labels = self.typed + self.accepted
        return {
            "view": self.view,
            "labels": labels,
            "typed": self.typed,
            "accepted": self.accepted,
            "keys": self.keys,
            "keys_per_label": round(self.keys / labels, 3),
            "app_ms_per_label": round(1000 * self.app_seconds / labels, 2),
            "wall_s": round(time.perf_counter() - self.started, 1),
        }


async def measure(data: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    config = with_overrides(
        preset(args.preset), {"data.source": str(data), "device": "cpu", "seed": args.seed}
    )
    session = open_session(config, Path(tempfile.mkdtemp()) / "run", oracle="human")
    app = label_alone(session, "bench")  # as salal-tui builds it
    async with app.run_test(size=tuple(args.size)) as pilot:
        screen = app.label_screen

        async def until(ready: Any) -> None:
            while not ready():
                if app.return_code is not None:
                    raise SystemExit(f"the app ended: {app.error}")
                await pilot.pause(0.05)

        await until(lambda: screen.shown is not None)
        tally = Tally("single")  # from the first image: pretraining excluded

        async def press(key: str) -> None:
            begun = time.perf_counter()
            await pilot.press(key)
            tally.app_seconds += time.perf_counter() - begun
            tally.keys += 1

        class_keys = screen.query_one("ClassList").keys
        images = session.images.loaded
        assert images is not None

        def truth(index: int) -> int:
            return int(images.train.labels[index])

        while tally.typed < args.labels:
            await until(lambda: screen.shown is not None)
            assert screen.shown is not None
            await press(class_keys[truth(screen.shown.index)])
            tally.typed += 1
        single, tally = tally.result(), Tally("grid")

        await press("g")
        grid = app.screen
        assert isinstance(grid, GridScreen)
        while BAR_STEPS[grid.bar] / 100 != args.bar:  # the person sets the bar once
            await press("minus" if BAR_STEPS[grid.bar] / 100 > args.bar else "plus")
        while tally.typed + tally.accepted < args.labels:
            await until(lambda: grid._target() is not None or bool(grid._acceptable()))
            target, take = grid._target(), grid._acceptable()
            sure = None if target is None else confidence(target)
            if target is not None and (sure is None or sure < grid.threshold):
                await press(class_keys[truth(target.index)])
                tally.typed += 1
                continue
            for wrong in [q for q in take if q.predicted != truth(q.index)]:
                await walk_to(grid, grid.page.index(wrong), press)
                await press(class_keys[truth(wrong.index)])
                tally.typed += 1
            left = len(grid._acceptable())
            if left:
                await press("enter")
                tally.accepted += left
    return {"single": single, "grid": tally.result()}


async def walk_to(grid: GridScreen, n: int, press: Any) -> None:
    """Arrow keys from the cursor to tile `n`, as a person would press them."""
    columns = grid.shape[0]
    row, col = divmod(grid.cursor, columns)
    to_row, to_col = divmod(n, columns)
    for key, count in (
        ("down" if to_row > row else "up", abs(to_row - row)),
        ("right" if to_col > col else "left", abs(to_col - col)),
    ):
        for _ in range(count):
            await press(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="a folder with class folders (default: the digits)")
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--bar", type=float, default=0.9, choices=[b / 100 for b in BAR_STEPS])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=[100, 30], help="columns rows")
    args = parser.parse_args()
    if args.data:
        data = Path(args.data).resolve()
    else:
        from folder_cuts import write_digits  # the small-folders study writes the same folder

        data = write_digits(Path(tempfile.mkdtemp()) / "digits")
    runs = asyncio.run(measure(data, args))
    single, grid = runs["single"], runs["grid"]
    print(json.dumps({**runs, "bar": args.bar, "data": str(data), "size": args.size}))
    print(
        f"keys per label: grid {grid['keys_per_label']} against single "
        f"{single['keys_per_label']} (x{grid['keys_per_label'] / single['keys_per_label']:.2f}); "
        f"app ms per label: grid {grid['app_ms_per_label']} against single "
        f"{single['app_ms_per_label']} "
        f"(x{grid['app_ms_per_label'] / single['app_ms_per_label']:.2f})"
    )


if __name__ == "__main__":
    main()
