"""The loop's bookkeeping against a fake learner and journal (milliseconds); the whole runs on
drawn images are in functional/test_loop_runs.py."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from salal_core.config import PRESETS, with_overrides
from salal_core.data.identity import item_priority
from salal_core.events import (
    Event,
    LabelsAdded,
    Notice,
    PhaseChanged,
    Query,
    QueryReady,
    RoundEnded,
)
from salal_core.learn.learner import PoolPass
from salal_core.run.labels import LabelState
from salal_core.run.loop import HOLDOUT_EVERY, ActiveLoop
from salal_core.run.oracle import AutoOracle
from salal_core.run.stability import StopSet
from salal_core.run.summary import CurvePoint
from salal_core.selection.acquire import ACQUISITIONS
from salal_core.selection.pool import ALL_PARTS, PoolPart

N, CLASSES = 100, 4


class FakeLearner:
    """Probabilities that make item i's uncertainty grow with i (so entropy asks the last
    items first), embeddings of one dimension; fits are recorded."""

    def __init__(self, has_test: bool = True, members: int = 1) -> None:
        self.has_test, self.num_classes, self.members = has_test, CLASSES, members
        self.fits: list[tuple[list[int], int]] = []
        self.accuracies: list[float] = []  # what each round measures (0.5 when run out)
        self.head_input = "fake features"

    def fit(
        self, indices: np.ndarray, labels: np.ndarray, round_: int, held_out: np.ndarray | None
    ) -> float:
        assert (labels[indices] >= 0).all(), "trained on an item without a label"
        if held_out is not None:
            assert not set(indices.tolist()) & set(held_out.tolist()), "trained on held-out"
        self.fits.append((indices.tolist(), round_))
        return self.accuracy(held_out, labels)

    def accuracy(self, held_out: np.ndarray | None, labels: np.ndarray) -> float:
        return self.accuracies.pop(0) if self.accuracies else 0.5

    def pool_pass(self, indices: np.ndarray, parts: Collection[PoolPart] = ALL_PARTS) -> PoolPass:
        sharp = torch.from_numpy(1.0 - indices / N).float().view(-1, 1)  # (P, 1)
        logits = torch.zeros(len(indices), CLASSES)
        logits[:, 0] = 5 * sharp[:, 0]
        probs = logits.softmax(-1).unsqueeze(0).expand(self.members, -1, -1)
        # Embeddings: ten groups along a line, so clustering has something to find.
        groups = torch.from_numpy(indices % 10).float().view(-1, 1) * 10
        return PoolPass(probs, sharp, torch.cat([groups, sharp], 1))

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {}


class FakeJournal:
    def __init__(self) -> None:
        self.asked: list[int] = []
        self.consumed: list[int] = []
        self.rounds: list[tuple[int, int]] = []  # (round, labeled at its curve point)
        self.corrections: dict[int, int] = {}  # item -> label, as review would write them

    def save_queries(self, queries: Sequence[Query]) -> None:
        self.asked += [q.item for q in queries]

    def mark_consumed(self, items: Sequence[int]) -> None:
        self.consumed += list(items)

    def current_labels(self) -> dict[int, int]:
        return dict(self.corrections)

    def save_round(
        self,
        round_: int,
        curve: Sequence[CurvePoint],
        generator_state: torch.Tensor,
        stop_set: StopSet | None,
    ) -> None:
        self.rounds.append((round_, curve[-1].labeled))


def make_loop(
    acquisition: str = "entropy",
    initial: int = 20,
    has_test: bool = True,
    events: list[Event] | None = None,
    **active: Any,
) -> tuple[ActiveLoop, FakeLearner, FakeJournal, np.ndarray]:
    config = with_overrides(
        PRESETS["tiny"],
        {
            "active.acquisition": acquisition,
            "active.budget": 0.5,
            "active.query_size": 10,
            **{f"active.{k}": v for k, v in active.items()},
        },
    )
    truth = np.arange(N) % CLASSES
    state = LabelState(N)
    state.add(range(initial), truth[:initial], 0)
    learner = FakeLearner(
        has_test, config.active.committee if ACQUISITIONS[acquisition].committee else 1
    )
    journal = FakeJournal()
    loop = ActiveLoop(
        config,
        learner,
        AutoOracle(truth),
        journal,
        state,
        (events if events is not None else []).append,
        item_ids=np.arange(N) + 1000,  # item ids are not positions
        priority=item_priority([f"img{i}" for i in range(N)], 0),
        generator=torch.Generator().manual_seed(1),
    )
    return loop, learner, journal, truth


def test_the_loop_asks_each_item_once_up_to_the_budget_in_positions_and_items() -> None:
    events: list[Event] = []
    loop, learner, journal, truth = make_loop(events=events)
    assert loop.run() == "budget"
    assert loop.state.num_labeled == 50
    asked = [q for e in events if isinstance(e, QueryReady) for q in e.queries]
    assert len({q.index for q in asked}) == len(asked) == 30
    assert all(q.item == q.index + 1000 for q in asked)  # the journal hears item ids
    assert journal.asked == journal.consumed == [q.item for q in asked]
    # Entropy asks the most uncertain first: here, the highest positions.
    assert sorted(q.index for q in asked[:10]) == list(range(90, 100))
    added = [e for e in events if isinstance(e, LabelsAdded)]
    assert [(e.round, len(e.indices), e.labeled) for e in added] == [
        (1, 10, 30),
        (2, 10, 40),
        (3, 10, 50),
    ]
    assert all(list(e.labels) == truth[list(e.indices)].tolist() for e in added)
    assert [r for r, _ in journal.rounds] == [0, 1, 2, 3]  # a checkpoint per round
    assert [labeled for _, labeled in journal.rounds] == [20, 30, 40, 50]
    ended = [e.round for e in events if isinstance(e, RoundEnded)]
    assert ended == [0, 1, 2, 3] and [p.labeled for p in loop.curve] == [20, 30, 40, 50]
    assert [len(ix) for ix, _ in learner.fits] == [20, 30, 40, 50]
    assert np.array_equal(
        loop.state.labels[loop.state.labeled_indices()], truth[loop.state.labeled_indices()]
    )


def test_lookahead_keeps_batches_asked_ahead_without_passing_the_budget() -> None:
    events: list[Event] = []
    loop, _, _, _ = make_loop(events=events, lookahead=2, query_size=12)
    loop.run()
    asked = [len(e.queries) for e in events if isinstance(e, QueryReady)]
    assert sum(asked) == 30 and asked[:2] == [12, 12] and asked[-1] == 6  # 20 + 30 = budget
    assert loop.state.num_labeled == 50


@pytest.mark.parametrize("acquisition", ["entropy", "random"])
def test_a_cold_start_is_chosen_from_features_alone(acquisition: str) -> None:
    """No labels, no classifier: every strategy starts with typiclust on the backbone's
    embeddings (here: one image from each of the ten groups), except the random baseline."""
    events: list[Event] = []
    loop, learner, _, _ = make_loop(acquisition, initial=0, events=events)
    loop.run()
    first = next(e for e in events if isinstance(e, QueryReady))
    scoring = next(e for e in events if isinstance(e, PhaseChanged) and e.phase == "scoring")
    assert first.round == 0 and len(first.queries) == 10
    assert all(q.probabilities == (0.25,) * 4 for q in first.queries)  # no model to guess yet
    groups = {q.index % 10 for q in first.queries}
    if acquisition == "random":
        assert scoring.detail.startswith("random") and len(groups) < 10
    else:
        assert scoring.detail.startswith("typiclust") and groups == set(range(10))
    assert learner.fits[0][1] == 0 and len(learner.fits[0][0]) == 10  # trained on them first


def test_without_a_test_split_one_label_in_five_is_held_out_by_identity() -> None:
    loop, learner, _, _ = make_loop(has_test=False)
    loop.run()
    held = loop.holdout
    assert held.tolist() == ((loop.priority % HOLDOUT_EVERY) == 0).tolist()
    assert 0.1 < held.mean() < 0.3
    assert all(not held[ix].any() for ix, _ in learner.fits)  # never trained on
    assert loop.accuracy_source == "held-out"


def test_an_empty_pool_ends_the_run() -> None:
    """Skipped items leave a target the pool cannot reach; the loop stops when it runs dry."""
    loop, _, _, _ = make_loop(query_size=40)
    loop.target = N + 10
    assert loop.run() == "pool empty"
    assert loop.state.num_labeled == N


def test_a_resumed_loop_that_saw_every_label_goes_straight_to_asking() -> None:
    loop, learner, _, _ = make_loop()
    loop.curve = [CurvePoint(4, 20, 0.2, 0.5, 1.0)]
    loop.target = 30
    loop.run()
    assert [r for _, r in learner.fits] == [5]  # round 4 was not trained again
    assert loop.round == 5


def test_corrections_made_in_review_count_from_the_next_round() -> None:
    events: list[Event] = []
    loop, _, journal, truth = make_loop(events=events)
    journal.corrections = {1000 + 3: (int(truth[3]) + 1) % CLASSES}  # item of position 3
    loop.run()
    assert loop.state.labels[3] == (truth[3] + 1) % CLASSES and loop.state.round[3] == 0
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices.count("1 corrected labels taken in") == 1  # once, not every round


def test_stop_when_flat_ends_the_run_once_accuracy_stops_rising() -> None:
    events: list[Event] = []
    loop, learner, _, _ = make_loop(events=events, stop_when_flat=2, budget=0.9)
    learner.accuracies = [0.40, 0.55, 0.60, 0.58, 0.60, 0.70]  # rounds 3 and 4: no new best
    assert loop.run() == "flat"
    assert [round(p.test_accuracy, 2) for p in loop.curve] == [0.40, 0.55, 0.60, 0.58, 0.60]
    gained = [e.gained for e in events if isinstance(e, RoundEnded)]
    assert np.isnan(gained[0]) and gained[1:] == pytest.approx([0.15, 0.05, -0.02, 0.02])


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_every_acquisition_fills_a_round(name: str) -> None:
    events: list[Event] = []
    loop, _, _, _ = make_loop(name, events=events)
    loop.run()
    queries = [q for e in events if isinstance(e, QueryReady) for q in e.queries]
    assert len(queries) == 30 and all(q.round >= 1 for q in queries)
    assert any(isinstance(e, PhaseChanged) and e.phase == "scoring" for e in events)


# ---------------------------------------------------------------------------- real runs


def test_an_epoch_at_a_uniform_guess_is_at_ln_classes_and_chance() -> None:
    from salal_core.learn.watch import EpochStats, at_uniform

    assert at_uniform(EpochStats(loss=math.log(4), accuracy=0.25, images=100, seconds=1.0), 4)
    assert at_uniform(EpochStats(1.398, 0.256, 100, 1.0), 4)  # the paper recipe, measured
    assert not at_uniform(EpochStats(1.2, 0.25, 100, 1.0), 4)
    assert not at_uniform(EpochStats(math.log(4), 0.40, 100, 1.0), 4)


def test_stop_when_stable_ends_the_loop_once_predictions_hold() -> None:
    """The fake learner predicts the same every round: kappa is NaN in round 0, then 1.0;
    three rounds of 1.0 stop the loop at round 3, well before the budget."""
    loop, _, _, _ = make_loop(stop_when_stable=True, budget=0.9)
    assert loop.run() == "stable"
    assert [p.round for p in loop.curve] == [0, 1, 2, 3]
    assert math.isnan(loop.curve[0].kappa) and [p.kappa for p in loop.curve[1:]] == [1.0] * 3
    loop, _, _, _ = make_loop(budget=0.9)
    assert loop.run() == "budget"  # without the flag, the budget ends it
