"""The linear probe's cross-validation and the head inputs' distance space, on inputs small
enough to check against the plain computation."""

from __future__ import annotations

import torch

from salal_core.learn import probe
from salal_core.learn.inputs import DISTANCE_DIMS, HeadFeatures, principal_axes
from salal_core.selection.clustering import kmeans


def blobs(n: int, dim: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`classes` Gaussian blobs in `dim` dimensions, a little apart: (points, class of each)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centers = torch.randn(classes, dim, generator=g)
    return centers[y] + 1.5 * torch.randn(n, dim, generator=g), y


def test_cross_validation_in_each_folds_basis_counts_what_each_folds_own_fit_gets_right() -> None:
    """With fewer labels than features each fold is solved once in its labeled rows' basis for
    the whole path of strengths, the held-out rows moved into it; they must be right exactly
    where a fit of that fold alone, predicting in the features' own coordinates, is."""
    x, y = blobs(40, 300, 4)
    score = probe.cross_validate(x, y, 4)
    fold = torch.arange(40) % probe.FOLDS
    right = {strength: torch.zeros(40, dtype=torch.bool) for strength in probe.L2_GRID}
    for k in range(probe.FOLDS):
        train, test = fold != k, fold == k
        w = None
        for strength in reversed(probe.L2_GRID):
            w = probe._lbfgs(
                x[train], y[train], 4, torch.ones(1, 32), strength, w, probe.FOLD_ITERATIONS
            )
            right[strength][test] = probe.probe_probs(w, x[test])[0].argmax(1) == y[test]
    best = max(reversed(probe.L2_GRID), key=lambda s: int(right[s].sum()))
    assert score.l2 == best and torch.equal(score.right, right[best])
    accuracy = score.accuracy
    assert 0.25 < accuracy <= 1.0  # the blobs are learnable: above one class in four


def test_principal_axes_capture_the_variance_the_exact_decomposition_does() -> None:
    g = torch.Generator().manual_seed(1)
    signal = torch.randn(2000, 40, generator=g) @ torch.randn(40, 600, generator=g)
    x = signal + 0.3 * torch.randn(2000, 600, generator=g)
    x = x - x.mean(0)
    axes = principal_axes(x, 40)
    assert axes is not None and axes.shape == (600, 40)
    assert torch.allclose(axes.T @ axes, torch.eye(40), atol=1e-4)  # orthonormal
    exact = torch.linalg.svd(x, full_matrices=False)[2][:40].T
    captured = (x @ axes).pow(2).sum() / (x @ exact).pow(2).sum()
    assert captured > 0.99
    assert torch.equal(principal_axes(x, 40), axes)  # seeded: the same every time
    assert principal_axes(x[:, :30], 40) is None  # nothing to reduce


def test_distances_are_unit_rows_on_the_leading_components_and_keep_the_clusters() -> None:
    x, y = blobs(600, 1000, 6, seed=2)
    features = HeadFeatures.standardized("wide", x, x[:10])
    rows = torch.arange(600)
    distances = features.distances(rows)
    assert distances.shape == (600, DISTANCE_DIMS)
    assert torch.allclose(distances.norm(dim=1), torch.ones(600), atol=1e-5)
    assign = kmeans(distances, 6, torch.Generator().manual_seed(0))
    # Each found cluster is one blob: the blobs' structure survives the projection.
    for c in range(6):
        assert len(set(y[assign == c].tolist())) == 1
    narrow = HeadFeatures.standardized("narrow", x[:, :20], x[:10, :20])
    assert narrow.distances(rows).shape == (600, 20)  # below DISTANCE_DIMS: as they are


def test_each_committee_member_reaches_its_own_optimum() -> None:
    """K members, each on its own Poisson weights, fit at once: at the result, autograd's
    gradient of every member's own penalised loss is zero, so no member's data leaks into
    another's (the loss and gradient are written by hand for (K, N, C) at once)."""
    x, y = blobs(60, 8, 3, seed=3)
    generator = torch.Generator().manual_seed(0)
    w = probe.fit_probe(x, y, 3, generator, members=3, l2=0.1)
    assert w.shape == (3, 9, 3)
    assert not torch.allclose(w[0], w[1])  # bootstrap members differ
    # The same draw as fit_probe's: each member's weight of each label.
    weights = torch.poisson(torch.ones(3, 60), generator=torch.Generator().manual_seed(0))
    for k in range(3):
        member = w[k].clone().requires_grad_(True)
        logits = torch.cat([x, torch.ones(60, 1)], 1) @ member
        share = weights[k] / weights[k].sum()
        loss = -(logits.log_softmax(1)[torch.arange(60), y] * share).sum()
        loss = loss + 0.1 * member[:-1].pow(2).sum()  # the bias row is not penalised
        (gradient,) = torch.autograd.grad(loss, member)
        assert gradient.abs().max() < 1e-3


def test_distances_of_a_small_pool_have_as_many_components_as_images() -> None:
    x, _ = blobs(50, 300, 5, seed=4)
    distances = HeadFeatures.standardized("wide", x, x[:5]).distances(torch.arange(50))
    assert distances.shape == (50, 50)  # 50 images span at most 50 directions
    assert torch.allclose(distances.norm(dim=1), torch.ones(50), atol=1e-5)
    one = HeadFeatures.standardized("one", x[:1], x[:1]).distances(torch.arange(1))
    assert one.shape[0] == 1 and bool(torch.isfinite(one).all())  # no spread, no NaN
