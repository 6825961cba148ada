"""Stop when the predictions stop changing: Cohen's kappa by hand, the stop rule and the stop
set (the loop and resume tests run them in a run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from salal_core.run.stability import STOP_SET_SIZE, StopSet, cohen_kappa, is_stable, kappa_between


def test_kappa_by_hand() -> None:
    # observed 3/4; chance: first says 0 half the time, second a quarter: .5*.25 + .5*.75 = .5
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2) == pytest.approx(0.5)
    # observed 0 against chance .5: kappa -1
    assert cohen_kappa(np.array([0, 1]), np.array([1, 0]), 2) == pytest.approx(-1.0)
    # both rounds predict one class throughout: chance agreement 1, and kappa 1.0, not 0/0
    assert cohen_kappa(np.array([2, 2, 2]), np.array([2, 2, 2]), 3) == 1.0
    assert math.isnan(cohen_kappa(np.array([], int), np.array([], int), 3))


def test_images_without_a_prediction_in_either_round_do_not_count() -> None:
    assert kappa_between([-1, 0, 1], [1, 0, 1], 2) == 1.0
    assert math.isnan(kappa_between([-1, -1], [0, 1], 2))


def test_stable_means_the_last_three_kappas_average_0_99() -> None:
    assert not is_stable([1.0, 1.0])
    assert not is_stable([math.nan, 1.0, 1.0])
    assert is_stable([0.2, 0.98, 1.0, 1.0])
    assert not is_stable([0.97, 0.99, 1.0])  # 0.9867


def test_the_stop_set_is_drawn_from_unlabeled_images_by_priority() -> None:
    items = np.arange(5000) + 7
    priority = np.random.default_rng(0).permutation(5000)
    unlabeled = np.ones(5000, bool)
    unlabeled[:100] = False
    drawn = StopSet.draw(items, priority, unlabeled)
    assert len(drawn.items) == STOP_SET_SIZE and min(drawn.items) >= 107
    expected = np.sort(np.flatnonzero(unlabeled)[np.argsort(priority[unlabeled])][:STOP_SET_SIZE])
    assert list(drawn.items) == (expected + 7).tolist()
    assert set(drawn.predictions) == {-1}
