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


def test_cross_validation_in_each_folds_basis_counts_what_the_full_space_fits_get_right() -> None:
    """With fewer labels than features each fold is solved in its labeled rows' basis, the
    held-out rows moved into it; they must be right exactly where the full-space fit is."""
    x, y = blobs(40, 300, 4)
    l2, accuracy = probe.cross_validate(x, y, 4)
    fold = torch.arange(40) % probe.FOLDS
    right = dict.fromkeys(probe.L2_GRID, 0)
    for k in range(probe.FOLDS):
        train, test = fold != k, fold == k
        w = None
        for strength in reversed(probe.L2_GRID):
            w = probe._lbfgs(
                x[train], y[train], 4, torch.ones(1, 32), strength, w, probe.FOLD_ITERATIONS
            )
            right[strength] += int((probe.probe_probs(w, x[test])[0].argmax(1) == y[test]).sum())
    best = max(reversed(probe.L2_GRID), key=lambda s: right[s])
    assert (l2, accuracy) == (best, right[best] / 40)
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
