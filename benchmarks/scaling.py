"""Pretraining throughput on one process against N under torchrun, on the same machine, in the
same run: the ratio says what the extra processes buy.

Each count runs `salal-core pretrain --json` (under `torchrun --standalone` above one) on the
same data and preset; the figure is the steady-state images per second of the whole group
(the first epoch, which pays for warm-up, is left out). On a CPU, one process gets every core
and N processes get cores / N threads each, so the comparison is the machine against itself.

    python benchmarks/scaling.py --data ../shared/datasets/cifar10-jpeg.tar.gz --device cpu
    python benchmarks/scaling.py --data PACK --device cuda --preset fast --ranks 1,8   # 8 GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_EFFICIENCY = 0.85  # of N times one process's images/s, at N = 8 GPUs


def pretrain(ranks: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [
        "-m",
        "salal_core.cli",
        "pretrain",
        "--json",
        "--data",
        str(args.data),
        "--device",
        args.device,
        "--preset",
        args.preset,
        "--pretrain-epochs",
        str(args.epochs),
        "--cache-dir",
        str(args.cache_dir),
        "--out",
        str(out),
        *(["--train-limit", str(args.train_limit)] if args.train_limit else []),
    ]
    env = dict(os.environ)
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // ranks))
    launch = [sys.executable]
    if ranks > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    done = subprocess.run([*launch, *command], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{ranks} process(es) failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--ranks", default="1,2", help="process counts, comma-separated")
    parser.add_argument("--epochs", type=int, default=3, help="pretraining epochs per count")
    parser.add_argument("--train-limit", type=int, default=0, help="a slice of the images")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "salal")
    args = parser.parse_args()
    counts = [int(n) for n in args.ranks.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for ranks in counts:
            Console(stderr=True).print(f"[bold]{ranks} process(es)")
            results[ranks] = pretrain(ranks, args, Path(scratch) / f"ranks-{ranks}")
    base = results[counts[0]]["images_per_second"] / counts[0]
    table = Table(title=f"rotation pretraining, {args.preset} preset, {args.device}")
    for column in ("processes", "images/s", "vs one", "efficiency"):
        table.add_column(column, justify="right")
    rows = []
    for ranks in counts:
        speed = results[ranks]["images_per_second"]
        ratio = speed / base
        rows.append({"ranks": ranks, "images_per_second": speed, "speedup": ratio})
        table.add_row(str(ranks), f"{speed:,.0f}", f"{ratio:.2f}×", f"{ratio / ranks:.0%}")
    Console(stderr=True).print(table)
    target = f"target at 8 GPUs: {TARGET_EFFICIENCY:.0%} efficiency"
    Console(stderr=True).print(f"[dim]{target}")
    print(json.dumps({"device": args.device, "preset": args.preset, "rows": rows}))


if __name__ == "__main__":
    main()
