"""Per-item scores against hand-computed values and the invariants they must keep, and the
registry that puts every strategy behind one signature."""

import math

import pytest
import torch

from salal_core.selection import acquire
from salal_core.selection.acquire import ACQUISITIONS, by_score, on_mean
from salal_core.selection.pool import Pool
from salal_core.selection.scores import (
    bald,
    entropy,
    margin,
    mean_kl_to_consensus,
    top_k,
    uniform_random,
    variation_ratio,
    vote_entropy,
)


def pool_of(committee: torch.Tensor) -> Pool:
    p = committee.shape[1]
    return Pool(committee, torch.zeros(p, 2), torch.zeros(p, 2), torch.zeros(0, 2), torch.arange(p))


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
    for fn in (entropy, variation_ratio, margin):
        assert torch.allclose(fn(committee.mean(0))[perm], fn(committee[:, perm].mean(0)))
    for fn in (vote_entropy, mean_kl_to_consensus, bald):
        assert torch.allclose(fn(committee)[perm], fn(committee[:, perm]), atol=1e-6)


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
    a = uniform_random(committee, torch.Generator().manual_seed(7))
    b = uniform_random(committee, torch.Generator().manual_seed(7))
    c = uniform_random(committee, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_single_model_functions_score_the_committee_mean() -> None:
    committee = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # mean is uniform
    assert on_mean(entropy)(committee, None).item() == pytest.approx(1.0)


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


def test_bald_is_the_entropy_of_the_mean_minus_the_mean_entropy() -> None:
    # Two members, each sure, of different classes: all the uncertainty is disagreement.
    disagree = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    # Two members alike and unsure: uncertain, but nothing a label would settle between them.
    unsure = torch.tensor([[[0.5, 0.5]], [[0.5, 0.5]]])
    assert bald(disagree).item() == pytest.approx(1.0, abs=1e-6)
    assert bald(unsure).item() == pytest.approx(0.0, abs=1e-6)


def test_a_score_becomes_a_strategy_through_top_k() -> None:
    committee = torch.tensor([[[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.5, 0.5]]])
    chosen, scores = by_score(on_mean(entropy))(pool_of(committee), 2, None)
    assert chosen.tolist() == [1, 3] and scores.tolist() == pytest.approx([1.0, 1.0])
    assert ACQUISITIONS["entropy"].select(pool_of(committee), 2, None)[0].tolist() == [1, 3]


def test_the_registry_names_every_strategy_once_with_what_it_needs() -> None:
    assert list(ACQUISITIONS)[-1] == "random" and acquire.COLD_START in ACQUISITIONS
    assert {n for n, a in ACQUISITIONS.items() if a.committee} == {"qbc", "qbc_kl", "bald"}
    assert {n for n, a in ACQUISITIONS.items() if a.sees_labeled} == {"typiclust", "coreset"}
