"""The stop rules: Cohen's kappa by hand, the stable and flat rules, and the stop
set (the loop and resume tests run them in a run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from salal_core.run.stability import (
    STOP_SET_SIZE,
    StopSet,
    cohen_kappa,
    is_flat,
    is_stable,
    kappa_between,
)


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


def test_flat_means_the_last_rounds_beat_nothing_before_them() -> None:
    nan = float("nan")
    assert is_flat([0.3, 0.5, 0.4, 0.5], 2)  # 0.5 again is no better
    assert not is_flat([0.3, 0.5, 0.4, 0.51], 2)
    assert not is_flat([0.3, 0.5, 0.4], 3)  # nothing before the last three
    assert is_flat([0.3, nan, 0.5, nan, 0.4, 0.45], 2)  # unmeasured rounds do not count
    assert not is_flat([nan, nan, 0.4], 2)  # one measured round: nothing to compare with
    assert not is_flat([0.5, 0.4, 0.3], 0)  # 0: the rule is off


def test_advancing_the_stop_set_predicts_the_images_still_there_and_measures_kappa() -> None:
    before = StopSet((10, 11, 12, 13, 14, 15, 16), (0, 1, 1, -1, 0, 0, 1))
    # Item 10 has left the source; the rest sit at other positions than before.
    item_ids = np.array([13, 99, 12, 11, 16, 15, 14])
    asked: list[list[int]] = []
    new_class = {3: 1, 2: 0, 0: 0, 6: 0, 5: 0, 4: 1}  # position -> this round's prediction

    def predict(positions: np.ndarray) -> np.ndarray:
        asked.append(positions.tolist())
        return np.array([new_class[int(p)] for p in positions])

    after, kappa = before.advance(item_ids, predict, 2)
    assert asked == [[3, 2, 0, 6, 5, 4]]  # items 11 to 16, by their positions now
    assert after == StopSet((10, 11, 12, 13, 14, 15, 16), (-1, 1, 0, 0, 0, 0, 1))
    # Items 11, 12, 14, 15, 16 were predicted in both rounds: before 1,1,0,0,1, now 1,0,0,0,1.
    assert kappa == pytest.approx(
        cohen_kappa(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 0, 1]), 2)
    )
    assert 0 < kappa < 1
