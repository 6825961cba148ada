"""Batch-aware selection: a batch that covers the pool, not k near-copies of one doubt.

- typiclust (Hacohen et al., ICML 2022): with few labels the most uncertain images are outliers;
  cluster everything, and from each of the largest clusters that has no label yet take its most
  typical image. The cold-start strategy.
- coreset (Sener and Savarese, ICLR 2018): k-center greedy, each image the farthest from all
  that is labeled or chosen.
- badge (Ash et al., ICLR 2020): k-means++ over last-layer gradient embeddings, which are large
  where the model is unsure and point where it is unsure about.
- cluster_margin (after Citovsky et al., NeurIPS 2021): the smallest margins, then one image per
  cluster among them.

Each is pure: (Pool, k, generator) -> (k pool positions, a score for each).
"""

from __future__ import annotations

import torch

from salal_core.selection.clustering import k_center_greedy, kmeans, kmeans_plus_plus, sq_distances
from salal_core.selection.pool import Pool
from salal_core.selection.scores import margin, top_k

TYPICAL_NEIGHBOURS = 20  # typicality: inverse mean distance to this many nearest neighbours
MAX_CLUSTERS = 500  # typiclust's cap on clusters beyond the batch itself (as its authors do)
CANDIDATES_PER_PICK = 10  # cluster_margin: the most uncertain 10k images, then k clusters


def typicality(points: torch.Tensor) -> torch.Tensor:
    """(S, E) -> (S,) inverse mean distance to each point's nearest neighbours among `points`."""
    s = points.shape[0]
    if s == 1:
        return torch.ones(1, device=points.device)
    k = min(TYPICAL_NEIGHBOURS, s - 1)
    d = sq_distances(points, points).sqrt()
    nearest = d.topk(k + 1, dim=1, largest=False).values[:, 1:]  # without itself
    return 1.0 / nearest.mean(1).clamp_min(1e-12)


def typiclust(
    pool: Pool, k: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    labeled = pool.labeled_embeddings
    n_labeled, n = labeled.shape[0], pool.size
    everything = torch.cat([labeled, pool.embeddings])  # (L + P, E)
    clusters = min(n_labeled + k, max(MAX_CLUSTERS, k), n_labeled + n)
    assign = kmeans(everything, clusters, generator)
    sizes = torch.bincount(assign, minlength=clusters).tolist()
    covered = set(assign[:n_labeled].tolist())
    shuffle = torch.randperm(clusters, generator=generator, device=assign.device).tolist()
    # Largest uncovered clusters first; ties by a seeded shuffle, not by cluster number.
    order = sorted(range(clusters), key=lambda c: (c in covered, -sizes[c], shuffle[c]))
    typical: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    available = torch.ones(n, dtype=torch.bool, device=assign.device)
    chosen: list[torch.Tensor] = []
    scores: list[torch.Tensor] = []
    while len(chosen) < min(k, n):  # a pick from each cluster in turn, then round again
        for c in order:
            if len(chosen) == min(k, n):
                break
            if c not in typical:
                rows = (assign == c).nonzero()[:, 0]  # into `everything`, labeled rows first
                values = typicality(everything[rows])  # over the whole cluster, labels too
                is_pool = rows >= n_labeled
                typical[c] = (rows[is_pool] - n_labeled, values[is_pool])
            positions, values = typical[c]
            free = available[positions]
            if not bool(free.any()):
                continue
            best = torch.where(free, values, -1.0).argmax()
            chosen.append(positions[best])
            scores.append(values[best])
            available[positions[best]] = False
    return torch.stack(chosen), torch.stack(scores)


def coreset(
    pool: Pool, k: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    return k_center_greedy(pool.embeddings, pool.labeled_embeddings, k, generator)


def badge(
    pool: Pool, k: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of the loss at the model's own guess, with respect to the last layer, is
    (p - onehot(guess)) ⊗ h: never built, since <a⊗h, b⊗g> = <a, b><h, g>."""
    p = pool.probabilities.float().mean(0)  # (P, C)
    a = p - torch.nn.functional.one_hot(p.argmax(1), p.shape[1]).float()
    h = pool.features.float()
    sq_norm = a.pow(2).sum(1) * h.pow(2).sum(1)  # |a ⊗ h|^2
    a_columns, h_columns = a.T.contiguous(), h.T.contiguous()  # read in order (distances_to_row)

    def sq_distance_to(j: torch.Tensor) -> torch.Tensor:
        cross = (a[j] @ a_columns).mul_(h[j] @ h_columns)
        return cross.mul_(-2).add_(sq_norm).add_(sq_norm[j]).clamp_min_(0)

    first = sq_norm.argmax()  # BADGE starts from the largest gradient
    chosen = kmeans_plus_plus(sq_distance_to, pool.size, k, generator, first)
    return chosen, sq_norm[chosen].sqrt()


def cluster_margin(
    pool: Pool, k: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    uncertainty = margin(pool.probabilities.float().mean(0))  # high = small margin
    m = min(pool.size, CANDIDATES_PER_PICK * k)
    candidates = top_k(uncertainty, m, pool.priority)
    assign = kmeans(pool.embeddings[candidates], k, generator)
    # From each cluster its most uncertain candidate; `candidates` is ranked, so the first.
    first_in_cluster = torch.full((k,), m, device=assign.device).scatter_reduce(
        0, assign, torch.arange(m, device=assign.device), reduce="amin"
    )
    picked = first_in_cluster[first_in_cluster < m].sort().values
    if picked.shape[0] < min(k, m):  # fewer clusters than asked: fill in margin order
        rest = torch.ones(m, dtype=torch.bool, device=assign.device)
        rest[picked] = False
        extra = rest.nonzero()[:, 0][: min(k, m) - picked.shape[0]]
        picked = torch.cat([picked, extra])
    positions = candidates[picked]
    return positions, uncertainty[positions]
