"""Clustering in torch, on whatever device the embeddings live on: k-means++ seeding, k-means,
k-center greedy. A GPU clusters tens of thousands of embeddings in about a second, where a CPU
library would first copy them off the device. Seeded by a torch generator, so runs repeat."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

CHUNK = 8192  # rows of a distance matrix computed at once: bounds memory on large pools
# Past this much work (points x clusters x dimensions), k-means is seeded and iterated on a
# random sample of SAMPLE_PER_CLUSTER points a cluster (scikit-learn's MiniBatchKMeans seeds
# from 3k points too), then every point is assigned once: 2,500 clusters of 50,000 points in
# seconds on two CPU cores instead of many minutes, at a small cost in inertia and none
# measured in typiclust's curve (BENCHMARKS.md). The exact path, four restarts, costs about
# a second on two cores at half this much work (5,000 points, 160 clusters, 128 dimensions).
EXACT_WORK = 2e8
SAMPLE_PER_CLUSTER = 3


def sq_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) squared Euclidean distances (never negative)."""
    cross = x @ y.T
    return (x.pow(2).sum(1, keepdim=True) - 2 * cross + y.pow(2).sum(1)).clamp_min(0)


def distances_to_row(x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function giving every row's squared distance to row i of `x` (N, D). It keeps `x`
    transposed: a row times a (D, N) matrix reads memory in order, where an (N, D) matrix
    times a vector does not, and on a CPU that is 2-3x faster (BENCHMARKS.md). The greedy
    selectors call it once a pick, thousands of times."""
    norms = x.pow(2).sum(1)
    columns = x.T.contiguous()

    def sq_distance_to(i: torch.Tensor) -> torch.Tensor:
        return (x[i] @ columns).mul_(-2).add_(norms).add_(norms[i]).clamp_min_(0)

    return sq_distance_to


def draw(weights: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """`count` indices drawn with probability proportional to `weights` (with replacement, as
    scikit-learn's k-means++ draws its candidates): uniforms placed on the running sum. One
    pass over the weights, where torch.multinomial draws an exponential for each of them."""
    cumulative = weights.double().cumsum(0)
    spots = torch.rand(count, generator=generator, device=weights.device, dtype=torch.float64)
    picked = torch.searchsorted(cumulative, spots * cumulative[-1], right=True)
    return picked.clamp_max_(weights.shape[0] - 1)


def nearest(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of x: (squared distance to the nearest center, its index), in chunks."""
    dist, index = [], []
    # |x - c|^2 = |x|^2 + (|c|^2 - 2 x.c): the nearest center minimises the bracket alone, one
    # fused matrix product per chunk, and |x|^2 is added to the winners only.
    center_norms = centers.pow(2).sum(1)
    for start in range(0, x.shape[0], CHUNK):
        chunk = x[start : start + CHUNK]
        best = torch.addmm(center_norms, chunk, centers.T, alpha=-2).min(1)
        dist.append((best.values + chunk.pow(2).sum(1)).clamp_min(0))
        index.append(best.indices)
    return torch.cat(dist), torch.cat(index)


def kmeans_plus_plus(
    sq_distance_to: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    k: int,
    generator: torch.Generator | None,
    first: torch.Tensor,
    trials: int = 1,
) -> torch.Tensor:
    """k seeds among n points, each drawn with probability proportional to its squared distance
    to the seeds so far (Arthur and Vassilvitskii, 2007). With `trials` > 1, each step draws
    that many candidates and keeps the one that lowers the total most (greedy k-means++, as
    scikit-learn does), which rarely leaves a small cluster without a seed. `sq_distance_to(i)`
    gives every point's squared distance to point i, so the points need not be vectors at all
    (BADGE's gradient embeddings are never built). Returns (k,) indices, `first` first."""
    chosen = [first.reshape(())]
    closest = sq_distance_to(first)
    taken = torch.zeros(n, dtype=torch.bool, device=closest.device)
    taken[first] = True
    for _ in range(1, min(k, n)):
        weights = closest.clamp_min(0).masked_fill(taken, 0)
        # Every remaining point coincides with a seed (only rounding left a chosen one above
        # zero): take any point not yet chosen.
        weights = torch.where(weights.sum() > 0, weights, (~taken).to(weights.dtype))
        candidates = draw(weights, trials, generator)
        options = [torch.minimum(closest, sq_distance_to(c)) for c in candidates]
        best = int(torch.stack([o.sum() for o in options]).argmin()) if trials > 1 else 0
        chosen.append(candidates[best])
        taken[candidates[best]] = True
        closest = options[best]
    return torch.stack(chosen)


def kmeans(
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
    iterations: int = 20,
    restarts: int = 4,
) -> torch.Tensor:
    """Lloyd's k-means from k-means++ seeds, the best (lowest inertia) of `restarts` seeded
    tries, as scikit-learn's n_init does: one try can split a large cluster and merge two
    small ones. (N, D) -> (N,) cluster of each row, in 0..k-1."""
    n, d = x.shape
    k = min(k, n)
    if n * k * d > EXACT_WORK and n > SAMPLE_PER_CLUSTER * k:
        sample = torch.randperm(n, generator=generator, device=x.device)[: SAMPLE_PER_CLUSTER * k]
        centers = _lloyd(x[sample], k, generator, iterations, trials=1)[2]
        return nearest(x, centers)[1]
    best, best_inertia = None, float("inf")
    for _ in range(restarts):
        assign, inertia, _ = _lloyd(x, k, generator, iterations)
        if inertia < best_inertia:
            best, best_inertia = assign, inertia
    assert best is not None
    return best


def _lloyd(
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
    iterations: int,
    trials: int | None = None,
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """One k-means run: (cluster of each row, inertia, centers). An emptied cluster moves to
    the point farthest from its center. `trials` None: scikit-learn's greedy k-means++."""
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator, device=x.device)[0]
    seeds = kmeans_plus_plus(
        distances_to_row(x),
        n,
        k,
        generator,
        first,
        trials=2 + int(math.log(k)) if trials is None else trials,  # scikit-learn's choice
    )
    centers = x[seeds].clone()
    dist, assign = nearest(x, centers)
    for _ in range(iterations):
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        centers = torch.where(empty.unsqueeze(1), centers, sums / counts.clamp_min(1).unsqueeze(1))
        dist, new = nearest(x, centers)
        if bool(empty.any()):  # rare: one sync to re-seed it
            centers[empty.nonzero()[0, 0]] = x[dist.argmax()]
            dist, new = nearest(x, centers)
        if torch.equal(new, assign):
            break
        assign = new
    return assign, float(dist.sum()), centers


def k_center_greedy(
    pool: torch.Tensor, labeled: torch.Tensor, k: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sener and Savarese (2018): k pool points, each the one farthest from everything labeled
    or chosen so far. Returns (positions (k,), the distance at which each was chosen)."""
    n = pool.shape[0]
    chosen: list[torch.Tensor] = []
    gaps: list[torch.Tensor] = []
    sq_distance_to = distances_to_row(pool)  # each step is then one vector-matrix product

    if labeled.shape[0]:
        closest = nearest(pool, labeled)[0]
    else:  # nothing labeled: start at a seeded random point, then spread out from there
        first = torch.randint(n, (1,), generator=generator, device=pool.device)[0]
        chosen.append(first)
        gaps.append(torch.zeros((), device=pool.device))
        closest = sq_distance_to(first)
        closest[first] = -1.0
    while len(chosen) < min(k, n):
        i = closest.argmax()
        chosen.append(i)
        gaps.append(closest[i].clamp_min(0).sqrt())
        closest = torch.minimum(closest, sq_distance_to(i))
        closest[i] = -1.0  # never again
    return torch.stack(chosen), torch.stack(gaps)
