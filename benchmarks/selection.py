"""Selection time on a large pool, pool pass excluded, and what the sampled k-means costs.

Every strategy selects a batch of 2,500 from 40,000 pool embeddings (192-d, unit parts, as a
width-16 network gives; the cpu recipe's width 8 gives 96) with 10,000 labeled beside them, as
`Pool` hands them to `select`. Then k-means on 10,000 points and 500 clusters, exact (greedy
k-means++, 4 restarts) against the sampled path the large case takes, in the same run: seconds
and inertia, as ratios.
Last, the two steps every greedy pick repeats, each against its naive form on the same pool:
every point's distance to one point (a row times the transposed pool, against the pool times
a vector) and one weighted draw (a running sum, against torch.multinomial).

    python benchmarks/selection.py [--device cpu] [--strategies typiclust,coreset]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from rich.console import Console
from rich.table import Table

from salal_core.selection import acquire, clustering
from salal_core.selection.pool import Pool

POOL, LABELED, BATCH, DIM, CLASSES = 40_000, 10_000, 2_500, 192, 10


def blobs(n: int, centers: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Points around random centers, each half scaled to unit length as the engine's
    embeddings are (third stage, last stage)."""
    which = torch.randint(0, centers.shape[0], (n,), generator=generator)
    x = centers[which] + 0.5 * torch.randn(n, centers.shape[1], generator=generator)
    half = centers.shape[1] // 3
    return torch.cat(
        [
            torch.nn.functional.normalize(x[:, :half], dim=1),
            torch.nn.functional.normalize(x[:, half:], dim=1),
        ],
        1,
    )


def inertia(x: torch.Tensor, assign: torch.Tensor, k: int) -> float:
    sums = torch.zeros(k, x.shape[1]).index_add_(0, assign, x)
    counts = torch.bincount(assign, minlength=k).clamp_min(1).unsqueeze(1)
    return float((x - (sums / counts)[assign]).pow(2).sum())


def per_pick(pool: torch.Tensor, picks: int = 300) -> dict[str, dict[str, float]]:
    """Milliseconds a pick of each greedy step takes, the fast form against the naive one."""
    norms = pool.pow(2).sum(1)
    to_row = clustering.distances_to_row(pool)
    weights = torch.rand(pool.shape[0], generator=torch.Generator().manual_seed(1)).to(pool.device)
    g = torch.Generator(device=pool.device).manual_seed(0)
    pairs = {
        "distances to one point": (
            lambda i: to_row(i),
            lambda i: torch.addmv(norms, pool, pool[i], alpha=-2).add_(norms[i]).clamp_min_(0),
        ),
        "one weighted draw": (
            lambda i: clustering.draw(weights, 1, g),
            lambda i: torch.multinomial(weights, 1, generator=g),
        ),
    }
    out = {}
    for step, (fast, naive) in pairs.items():
        times = []
        for form in (fast, naive):
            form(torch.tensor(0)).cpu()  # warm
            start = time.perf_counter()
            for i in range(picks):
                form(torch.tensor(i, device=pool.device))
            torch.zeros(1, device=pool.device).cpu()  # wait for the device
            times.append(1000 * (time.perf_counter() - start) / picks)
        out[step] = {"fast_ms": times[0], "naive_ms": times[1], "speedup": times[1] / times[0]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--strategies", default=",".join(acquire.ACQUISITIONS))
    args = p.parse_args()
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(50, DIM, generator=g)
    pool = blobs(POOL, centers, g).to(device)
    labeled = blobs(LABELED, centers, g).to(device)
    probs = torch.softmax(torch.randn(5, POOL, CLASSES, generator=g), -1).to(device)
    features = torch.randn(POOL, 128, generator=g).to(device)
    priority = torch.randperm(POOL, generator=g).to(device)
    report: dict[str, object] = {"pool": POOL, "labeled": LABELED, "batch": BATCH}
    seconds = {}
    for name in args.strategies.split(","):
        strategy = acquire.get(name)
        member_probs = probs if strategy.committee else probs[:1]
        generator = torch.Generator(device=device).manual_seed(0)
        start = time.perf_counter()
        chosen, _ = strategy.select(
            Pool(member_probs, features, pool, labeled, priority), BATCH, generator
        )
        chosen.cpu()
        seconds[name] = time.perf_counter() - start
    report["select_seconds"] = seconds
    x = blobs(10_000, centers, g).to(device)
    runs: dict[str, dict[str, float]] = {}
    for path, work in (("exact", float("inf")), ("sampled", 0.0)):
        saved = clustering.EXACT_WORK
        clustering.EXACT_WORK = work
        try:
            start = time.perf_counter()
            assign = clustering.kmeans(x, 500, torch.Generator(device=device).manual_seed(0))
            runs[path] = {
                "seconds": time.perf_counter() - start,
                "inertia": inertia(x.cpu(), assign.cpu(), 500),
            }
        finally:
            clustering.EXACT_WORK = saved
    speedup = runs["exact"]["seconds"] / runs["sampled"]["seconds"]
    inertia_ratio = runs["sampled"]["inertia"] / runs["exact"]["inertia"]
    report["kmeans_10000x500"] = {**runs, "speedup": speedup, "inertia_ratio": inertia_ratio}
    report["per_pick"] = per_pick(pool)
    table = Table(title=f"selecting {BATCH:,} of {POOL:,} ({LABELED:,} labeled), {device}")
    table.add_column("strategy")
    table.add_column("selection s", justify="right")
    for name, s in seconds.items():
        table.add_row(name, f"{s:.2f}")
    Console(stderr=True).print(table)
    Console(stderr=True).print(
        f"k-means 10,000 x 500: sampled {speedup:.1f}x faster than exact, "
        f"inertia x{inertia_ratio:.3f}"
    )
    for step, timing in report["per_pick"].items():  # type: ignore[attr-defined]
        Console(stderr=True).print(
            f"{step}: {timing['fast_ms']:.2f} ms against {timing['naive_ms']:.2f} ms naive "
            f"({timing['speedup']:.1f}x)"
        )
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
