"""The head's input on a backbone run: every input side by side, scaled to equal shares, and
the rule that leaves the backbone only where the held-out labels clearly say so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import head_features
from salal_core.events import Recorder
from salal_core.learn import input_choice
from salal_core.learn.input_choice import clearly_better
from salal_core.learn.inputs import combined
from salal_core.learn.probe import HeldOutScore, standardize
from salal_core.learn.probe_learner import TUNED_STATE, FittedHead, ProbeLearner
from salal_core.learn.tuned_input import TunedInput


def test_the_combined_input_gives_each_part_an_equal_share_and_standardizes_from_raw() -> None:
    g = torch.Generator().manual_seed(0)
    backbone = torch.randn(500, 16, generator=g) * 7 + 3
    pixels = torch.randn(500, 64, generator=g) * 0.1 - 1
    parts = [head_features("lite", backbone), head_features("pixels", pixels)]
    both = combined(parts)
    assert both.name == "lite+pixels" and both.dim == 80
    shares = both.train.pow(2)
    # Each part holds half of a row's squared length, and the row is as long as the backbone's.
    assert torch.allclose(shares[:, :16].sum(1).mean(), shares[:, 16:].sum(1).mean(), rtol=0.05)
    assert torch.allclose(shares.sum(1).mean(), parts[0].train.pow(2).sum(1).mean(), rtol=0.05)
    # What an exported model does: the raw inputs side by side, standardized by the statistics.
    raw = torch.cat([backbone, pixels], 1)
    assert torch.allclose(standardize(raw, both.mean, both.std), both.train, atol=1e-5)


def test_the_combined_inputs_distances_are_the_backbones() -> None:
    g = torch.Generator().manual_seed(3)
    parts = [
        head_features("lite", torch.randn(300, 200, generator=g)),
        head_features("pixels", torch.randn(300, 150, generator=g) * 5),
    ]
    rows = torch.arange(0, 300, 7)
    assert torch.equal(combined(parts).distances(rows), parts[0].distances(rows))


def score(right: list[bool]) -> HeldOutScore:
    return HeldOutScore(1.0, torch.tensor(right))


def test_clearly_better_takes_more_than_a_label_or_two_of_luck() -> None:
    backbone = score([False] * 10)
    assert not clearly_better(score([True] + [False] * 9), backbone)  # 1 win: 1 > 1 fails
    assert clearly_better(score([True] * 2 + [False] * 8), backbone)  # 2 wins: 2 > 1.41
    assert not clearly_better(backbone, backbone)
    # 5 wins against 3 losses is 2 ahead, under sqrt(8) = 2.83: not clear.
    a = score([True] * 5 + [False] * 5)
    b = score([False] * 5 + [True] * 3 + [False] * 2)
    assert not clearly_better(a, b) and not clearly_better(b, a)


def learner(backbone: torch.Tensor, pixels: torch.Tensor, seen: Recorder) -> ProbeLearner:
    labels = torch.arange(len(backbone)) % 3
    candidates = [head_features("lite", backbone), head_features("pixels", pixels)]
    return ProbeLearner(candidates, labels[:4], True, 3, 1, torch.Generator(), seen)


def test_the_head_reads_every_input_up_to_two_labels_a_class() -> None:
    g = torch.Generator().manual_seed(1)
    labels = (torch.arange(60) % 3).numpy()
    seen = Recorder()
    model = learner(torch.randn(60, 8, generator=g), torch.randn(60, 5, generator=g), seen)
    choice = model.choose(np.arange(6), labels)
    assert (choice.name, choice.reason) == ("lite+pixels", "few labels")
    model.fit(np.arange(6), labels, 0, None)
    assert model.head_input == "lite+pixels"
    said = [e.message for e in seen.events if hasattr(e, "message")]
    assert any("too few to tell the inputs apart" in m for m in said)
    assert model.choose(np.arange(7), labels).reason != "few labels"  # past two a class


def test_the_backbone_stays_unless_another_input_is_clearly_better() -> None:
    g = torch.Generator().manual_seed(2)
    labels = torch.arange(60) % 3
    signal = torch.nn.functional.one_hot(labels, 3).float() * 4
    # Pixels a shade cleaner than an informative backbone: not clear enough to leave it.
    backbone = signal + 1.2 * torch.randn(60, 3, generator=g)
    pixels = signal + 1.0 * torch.randn(60, 3, generator=g)
    model = learner(backbone, pixels, Recorder())
    choice = model.choose(np.arange(30), labels.numpy())
    assert dict(choice.accuracies)["pixels"] >= dict(choice.accuracies)["lite"]
    assert (choice.name, choice.reason) == ("lite", "the backbone")
    # A backbone of noise: the informative pixels win clearly.
    noise = learner(torch.randn(60, 8, generator=g), pixels, Recorder())
    choice = noise.choose(np.arange(30), labels.numpy())
    assert choice.reason == "clearly better" and choice.name in ("pixels", "lite+pixels")


def test_the_few_labels_rule_counts_every_label_not_the_sample_cross_validation_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sample of 20 labels is two a class on 10 classes; 25 labels are past the rule. (On
    salal's own sample of 400, the same holds on 200 classes.)"""
    monkeypatch.setattr(input_choice, "CHOICE_LABELS", 20)
    monkeypatch.setattr(input_choice, "CHOICE_LABELS_A_CLASS", 2)
    g = torch.Generator().manual_seed(4)
    labels = torch.arange(60) % 10
    signal = torch.nn.functional.one_hot(labels, 10).float()
    candidates = [
        head_features("lite", signal * 3 + torch.randn(60, 10, generator=g)),
        head_features("pixels", torch.randn(60, 6, generator=g)),
    ]
    model = ProbeLearner(candidates, labels[:4], True, 10, 1, torch.Generator(), Recorder())
    assert len(input_choice.choice_sample(np.arange(25), 10)) == 20
    assert model.choose(np.arange(25), labels.numpy()).reason != "few labels"
    assert model.choose(np.arange(20), labels.numpy()).reason == "few labels"


def test_a_resumed_head_keeps_reading_every_input_side_by_side() -> None:
    g = torch.Generator().manual_seed(5)
    parts = [
        head_features("lite", torch.randn(30, 4, generator=g)),
        head_features("pixels", torch.randn(30, 3, generator=g)),
    ]
    both = combined(parts)
    head = FittedHead(both.name, 1.0, torch.zeros(1, both.dim + 1, 3), both.mean, both.std)
    resumed = ProbeLearner(
        parts, torch.zeros(4, dtype=torch.long), True, 3, 1, torch.Generator(), Recorder(), head
    )
    assert resumed.head_input == "lite+pixels"
    # A head on an input this run no longer has (rotnet's, say) is fit again, from the backbone.
    gone = FittedHead("lite+rotnet+pixels", 1.0, head.weight, head.mean, head.std)
    again = ProbeLearner(
        parts, torch.zeros(4, dtype=torch.long), True, 3, 1, torch.Generator(), Recorder(), gone
    )
    assert again.head_input == "lite"


class StandInTuner:
    """In place of learn/tuned_input.Tuner (whose networks tests/functional/test_fine_tune.py
    runs): tuned features that hold the classes, held-out verdicts all right or all wrong, and
    a fine-tuning that fails where told to (a GPU out of memory, say)."""

    name = "lite fine-tuned"

    def __init__(self, mode: str, better: bool) -> None:
        self.mode, self.better, self.fails = mode, better, False
        self.checked = self.tuned = 0

    def held_out(self, rows: np.ndarray, *_: object) -> HeldOutScore:
        self.checked += 1
        return HeldOutScore(0.1, torch.full((len(rows),), self.better))

    def tune(self, indices: np.ndarray, labels: np.ndarray, *_: object) -> TunedInput:
        if self.fails:
            raise RuntimeError("CUDA out of memory")
        self.tuned += 1
        classes = torch.nn.functional.one_hot(torch.from_numpy(labels), 3).float()
        return TunedInput(head_features(self.name, classes * 3), {"layer": torch.ones(2)})


def tuned_learner(tuner: StandInTuner) -> ProbeLearner:
    g = torch.Generator().manual_seed(6)
    candidates = [
        head_features("lite", torch.randn(60, 8, generator=g)),
        head_features("pixels", torch.randn(60, 5, generator=g)),
    ]
    labels = torch.arange(60) % 3
    return ProbeLearner(
        candidates,
        labels[:4],
        True,
        3,
        1,
        torch.Generator(),
        Recorder(),
        tuner=tuner,
    )


def test_a_fine_tuned_backbone_is_taken_only_where_the_held_out_labels_say_it_wins() -> None:
    labels = (torch.arange(60) % 3).numpy()
    wins = StandInTuner("check", better=True)
    model = tuned_learner(wins)
    model.fit(np.arange(30), labels, 1, None)
    assert (wins.checked, wins.tuned) == (1, 1)
    assert model.head_input == "lite fine-tuned"
    assert dict(model.choose(np.arange(30), labels).accuracies)["lite fine-tuned"] == 1.0
    state, _ = model.state_dicts()
    assert torch.equal(state[TUNED_STATE]["layer"], torch.ones(2))  # a resume re-embeds with it

    loses = StandInTuner("check", better=False)
    model = tuned_learner(loses)
    model.fit(np.arange(30), labels, 1, None)
    assert (loses.checked, loses.tuned) == (1, 0)
    assert model.head_input == "lite" and TUNED_STATE not in model.state_dicts()[0]
    # Two labels a class: the folds cannot judge, no copy is tuned.
    model.fit(np.arange(6), labels, 2, None)
    assert loses.checked == 1 and model.head_input == "lite+pixels"


def test_last_rounds_tuned_features_go_when_this_round_does_not_tune() -> None:
    labels = (torch.arange(60) % 3).numpy()
    tuner = StandInTuner("check", better=True)
    model = tuned_learner(tuner)
    model.fit(np.arange(30), labels, 1, None)
    tuner.better = False
    model.fit(np.arange(33), labels, 2, None)
    assert model.head_input == "lite" and "lite fine-tuned" not in model.candidates


def test_fine_tune_always_tunes_every_round_unasked() -> None:
    labels = (torch.arange(60) % 3).numpy()
    tuner = StandInTuner("always", better=False)
    model = tuned_learner(tuner)
    choice = model.choose(np.arange(6), labels, 1)  # even on two labels a class
    assert (choice.name, choice.reason) == ("lite fine-tuned", "asked for")
    assert (tuner.checked, tuner.tuned) == (0, 1)
    assert "--fine-tune always" in choice.describe(1)


def test_a_round_whose_fine_tuning_fails_leaves_the_last_rounds_model_whole() -> None:
    labels = (torch.arange(60) % 3).numpy()
    tuner = StandInTuner("check", better=True)
    model = tuned_learner(tuner)
    model.fit(np.arange(30), labels, 1, None)
    before = model.pool_pass(np.arange(60)).probabilities
    tuner.fails = True
    with pytest.raises(RuntimeError):
        model.fit(np.arange(33), labels, 2, None)
    assert model.head_input == "lite fine-tuned"
    assert torch.equal(model.pool_pass(np.arange(60)).probabilities, before)
