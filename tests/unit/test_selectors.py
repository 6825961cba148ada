"""Batch-aware selection on inputs small enough to check by hand, and typiclust's promise:
a first batch that covers the clusters where a random batch misses some."""

from __future__ import annotations

import pytest
import torch

from salal_core.selection import clustering
from salal_core.selection.acquire import ACQUISITIONS
from salal_core.selection.clustering import k_center_greedy, kmeans, nearest, sq_distances
from salal_core.selection.pool import Pool
from salal_core.selection.selectors import badge, cluster_margin, coreset, typicality, typiclust


def pool(
    embeddings: torch.Tensor,
    labeled: torch.Tensor | None = None,
    probs: torch.Tensor | None = None,
) -> Pool:
    p = embeddings.shape[0]
    probs = probs if probs is not None else torch.full((1, p, 2), 0.5)
    labeled = labeled if labeled is not None else embeddings[:0]
    return Pool(probs, embeddings, embeddings, labeled, torch.arange(p))


def clusters(sizes: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Well-separated blobs in 8-D, one per size: (points, cluster of each point)."""
    g = torch.Generator().manual_seed(seed)
    centers = (
        torch.eye(8)[: len(sizes)] * 20
        if len(sizes) <= 8
        else torch.randn(len(sizes), 8, generator=g) * 20
    )
    points = [centers[i] + torch.randn(n, 8, generator=g) for i, n in enumerate(sizes)]
    labels = [torch.full((n,), i) for i, n in enumerate(sizes)]
    return torch.cat(points), torch.cat(labels)


SIZES = [5, 8, 12, 20, 30, 45, 60, 80, 100, 140]  # ten clusters of unequal size


def test_typiclust_first_batch_covers_all_ten_clusters_where_random_misses() -> None:
    points, truth = clusters(SIZES)
    hits_random = []
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        chosen, scores = typiclust(pool(points), 10, g)
        assert sorted(truth[chosen].tolist()) == list(range(10)), seed
        assert (scores > 0).all()
        random = ACQUISITIONS["random"].select(
            pool(points), 10, torch.Generator().manual_seed(seed)
        )
        hits_random.append(len(set(truth[random[0]].tolist())))
    assert max(hits_random) < 10  # every random batch of the same seeds misses a cluster


def test_typiclust_skips_clusters_that_have_a_label_and_takes_the_most_typical() -> None:
    points, truth = clusters([30, 30, 30])
    points[0] = points[truth == 0].mean(0)  # the most typical point of cluster 0 is point 0
    labeled = points[truth == 1][:1]  # cluster 1 is covered already
    chosen, _ = typiclust(pool(points, labeled), 2, torch.Generator().manual_seed(0))
    assert sorted(truth[chosen].tolist()) == [0, 2]
    assert 0 in chosen.tolist()


def test_typicality_is_highest_in_the_middle() -> None:
    line = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    assert typicality(line).argmax().item() == 2


def test_coreset_is_k_center_greedy_from_the_labeled_set() -> None:
    embeddings = torch.tensor([[1.0], [5.0], [10.0], [9.0]])
    chosen, gaps = coreset(pool(embeddings, torch.tensor([[0.0]])), 2, None)
    assert chosen.tolist() == [2, 1]  # 10 is farthest from 0; then 5, farthest from {0, 10}
    assert gaps.tolist() == pytest.approx([10.0, 5.0])


def test_k_center_greedy_without_labels_starts_at_a_seeded_point() -> None:
    embeddings = torch.arange(20.0).unsqueeze(1)
    a, _ = k_center_greedy(embeddings, embeddings[:0], 3, torch.Generator().manual_seed(1))
    b, _ = k_center_greedy(embeddings, embeddings[:0], 3, torch.Generator().manual_seed(1))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 3
    assert {0, 19} & set(a.tolist())  # after the first, the far ends


def test_badge_starts_from_the_largest_gradient_and_never_repeats_a_direction() -> None:
    # Probabilities (mean over one head) and features: item 2 is the least sure with the
    # largest features, so it has the largest gradient; items 3 and 4 copy it exactly.
    probs = torch.tensor([[[0.9, 0.1], [0.8, 0.2], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    p = Pool(probs, features, features, features[:0], torch.arange(5))
    for seed in range(5):
        chosen, norms = badge(p, 3, torch.Generator().manual_seed(seed))
        assert chosen[0].item() == 2 and norms[0] == norms.max()
        assert sorted(chosen.tolist()) == [0, 1, 2]  # the copies are at distance zero


def test_cluster_margin_takes_the_most_uncertain_of_each_cluster() -> None:
    points, truth = clusters([10, 10])
    margins = torch.linspace(0.0, 0.45, 20)  # item 19 is the least sure
    margins[:10] = torch.linspace(0.0, 0.2, 10)  # cluster 0 is surer than cluster 1 ...
    margins[9] = 0.44  # ... but for item 9, second least sure overall
    probs = torch.stack([0.5 + margins, 0.5 - margins], 1).unsqueeze(0)  # top-2 gap = 2 * m
    p = Pool(probs, points, points, points[:0], torch.arange(20))
    chosen, _ = cluster_margin(p, 2, torch.Generator().manual_seed(0))
    # Top-2 by uncertainty would be items 0 and 10 (the smallest margins, one per cluster here);
    # one per cluster must be the least sure of each.
    assert sorted(truth[chosen].tolist()) == [0, 1]
    assert sorted(chosen.tolist()) == [0, 10]


def test_kmeans_finds_separated_blobs() -> None:
    points, truth = clusters([15, 25, 35])
    assign = kmeans(points, 3, torch.Generator().manual_seed(0))
    for c in range(3):
        assert len(set(assign[truth == c].tolist())) == 1
    assert len(set(assign.tolist())) == 3


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_every_strategy_returns_k_distinct_pool_positions_repeatably(name: str) -> None:
    points, _ = clusters([6, 7, 8, 9])
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(3, 30, 4, generator=g).softmax(-1)
    p = Pool(probs, points, points, points[:3], torch.randperm(30, generator=g))
    a, sa = ACQUISITIONS[name].select(p, 5, torch.Generator().manual_seed(3))
    b, _ = ACQUISITIONS[name].select(p, 5, torch.Generator().manual_seed(3))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 5 and len(sa) == 5
    assert all(0 <= i < 30 for i in a.tolist())


def test_many_clusters_take_the_sampled_path_and_still_find_the_blobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past EXACT_WORK, seeds and iterations run on 3 points a cluster, then every point is
    assigned: 40 separated blobs of 150 still come out as 40 pure clusters."""
    g = torch.Generator().manual_seed(0)
    centers = 20 * torch.randn(40, 16, generator=g)
    truth = torch.arange(40).repeat_interleave(150)
    x = centers[truth] + torch.randn(6000, 16, generator=g)
    monkeypatch.setattr(clustering, "EXACT_WORK", 0.0)
    assign = kmeans(x, 40, torch.Generator().manual_seed(1))
    assert assign.shape == (6000,) and int(assign.max()) < 40
    pure = sum(int(torch.bincount(assign[truth == c]).max()) for c in range(40)) / 6000
    assert pure >= 0.95
    assert len(set(assign.tolist())) >= 38


def test_nearest_agrees_with_the_plain_distance_matrix() -> None:
    g = torch.Generator().manual_seed(0)
    x, centers = torch.randn(300, 8, generator=g), torch.randn(20, 8, generator=g)
    dist, index = nearest(x, centers)
    plain = sq_distances(x, centers).min(1)
    assert torch.equal(index, plain.indices)
    assert torch.allclose(dist, plain.values, atol=1e-4)


def test_kmeans_plus_plus_on_coinciding_points_takes_distinct_ones() -> None:
    """A pool of near-copies: every distance is zero but a seed's own, which rounding left
    above zero (it once asked torch.multinomial for a draw from all-zero weights)."""
    first = torch.tensor(0)
    chosen = clustering.kmeans_plus_plus(
        lambda i: (torch.arange(6) == i).float() * 1e-7, 6, 4, torch.Generator(), first
    )
    assert len(set(chosen.tolist())) == 4 and chosen[0] == 0


def test_distances_to_a_row_agree_with_the_plain_distance_matrix() -> None:
    x = torch.randn(500, 12, generator=torch.Generator().manual_seed(0))
    to_row = clustering.distances_to_row(x)
    for i in (0, 7, 499):
        plain = sq_distances(x, x[i : i + 1])[:, 0]
        assert torch.allclose(to_row(torch.tensor(i)), plain, atol=1e-4)


def test_a_weighted_draw_follows_its_weights_and_never_takes_a_zero() -> None:
    weights = torch.tensor([0.0, 1.0, 0.0, 3.0, 0.0])
    picks = clustering.draw(weights, 40_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(picks, minlength=5)
    assert counts[[0, 2, 4]].sum() == 0  # zero weight: never drawn
    assert abs(counts[3] / counts[1] - 3.0) < 0.15  # in proportion to the weights
    again = clustering.draw(weights, 5, torch.Generator().manual_seed(0))
    assert torch.equal(again, clustering.draw(weights, 5, torch.Generator().manual_seed(0)))
