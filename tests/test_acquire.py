"""Acquisition functions against hand-computed values and the invariants they must keep."""

import math

import pytest
import torch

from salal_core import acquire
from salal_core.acquire import (
    ACQUISITIONS,
    entropy,
    margin,
    mean_kl_to_consensus,
    top_k,
    variation_ratio,
    vote_entropy,
)


def test_entropy_hand_computed_in_bits() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25] * 4, [1.0, 0, 0, 0], [0.7, 0.1, 0.1, 0.1]])
    expected = [1.0, 2.0, 0.0, -(0.7 * math.log2(0.7) + 3 * 0.1 * math.log2(0.1))]
    assert entropy(p).tolist() == pytest.approx(expected, abs=1e-6)


def test_uniform_is_highest_and_one_hot_lowest_for_every_uncertainty_measure() -> None:
    g = torch.Generator().manual_seed(0)
    random = torch.rand(50, 10, generator=g).softmax(-1)
    uniform = torch.full((1, 10), 0.1)
    one_hot = torch.eye(10)[:1]
    p = torch.cat([uniform, random, one_hot])
    for fn in (entropy, variation_ratio, margin):
        s = fn(p)
        assert s.argmax().item() == 0, fn.__name__
        assert s.argmin().item() == len(p) - 1, fn.__name__


def test_variation_ratio_and_margin_values() -> None:
    p = torch.tensor([[0.6, 0.3, 0.1], [0.4, 0.35, 0.25]])
    assert variation_ratio(p).tolist() == pytest.approx([0.4, 0.6])
    assert margin(p).tolist() == pytest.approx([1 - 0.3, 1 - 0.05])  # smaller margin, higher


def test_scores_are_permutation_equivariant() -> None:
    g = torch.Generator().manual_seed(1)
    committee = torch.rand(3, 20, 5, generator=g).softmax(-1)
    perm = torch.randperm(20, generator=g)
    for name, acq in ACQUISITIONS.items():
        if name == "random":
            continue
        a = acq.score(committee, None)[perm]
        b = acq.score(committee[:, perm], None)
        assert torch.allclose(a, b), name


def test_vote_entropy_counts_hard_votes() -> None:
    # Three members: two vote class 0 and one class 1 on item 0; all agree on item 1.
    committee = torch.tensor(
        [
            [[0.9, 0.1], [0.2, 0.8]],
            [[0.6, 0.4], [0.1, 0.9]],
            [[0.3, 0.7], [0.4, 0.6]],
        ]
    )
    expected = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert vote_entropy(committee).tolist() == pytest.approx([expected, 0.0], abs=1e-6)


def test_mean_kl_is_zero_when_members_agree_and_positive_otherwise() -> None:
    agree = torch.tensor([[[0.3, 0.7]], [[0.3, 0.7]]])
    disagree = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])
    assert mean_kl_to_consensus(agree).item() == pytest.approx(0.0, abs=1e-6)
    # KL([.9,.1] || [.5,.5]) in bits, the same for both members by symmetry.
    kl = 0.9 * math.log2(0.9 / 0.5) + 0.1 * math.log2(0.1 / 0.5)
    assert mean_kl_to_consensus(disagree).item() == pytest.approx(kl, abs=1e-5)


def test_random_is_seeded() -> None:
    committee = torch.full((1, 100, 3), 1 / 3)
    a = ACQUISITIONS["random"].score(committee, torch.Generator().manual_seed(7))
    b = ACQUISITIONS["random"].score(committee, torch.Generator().manual_seed(7))
    c = ACQUISITIONS["random"].score(committee, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_single_model_functions_score_the_committee_mean() -> None:
    committee = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # mean is uniform
    assert ACQUISITIONS["entropy"].score(committee, None).item() == pytest.approx(1.0)


def test_top_k_breaks_ties_by_priority_deterministically() -> None:
    scores = torch.tensor([0.5, 0.9, 0.5, 0.5, 0.1])
    priority = torch.tensor([4, 0, 3, 1, 2])
    assert top_k(scores, 3, priority).tolist() == [1, 3, 2]
    # Another priority breaks the same ties another way: the order comes from it, not index.
    assert top_k(scores, 3, torch.tensor([0, 4, 1, 3, 2])).tolist() == [1, 0, 2]


def test_unknown_acquisition_is_a_user_error() -> None:
    from salal_core.errors import SalalError

    with pytest.raises(SalalError, match="unknown acquisition 'entrpy'"):
        acquire.get("entrpy")
