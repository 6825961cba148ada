"""The input-rules study scores each rule by the input it picks, on the same labels."""

from __future__ import annotations

import torch

from helpers import load_benchmark
from salal_core.learn.inputs import HeadFeatures, combined
from salal_core.learn.probe import HeldOutScore


def test_each_rule_scores_the_input_it_picks() -> None:
    rules = load_benchmark("input_rules")
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    signal = torch.nn.functional.one_hot(labels, 3).float() * 3
    backbone = HeadFeatures.standardized(
        "lite",
        signal[:200] + torch.randn(200, 3, generator=g),
        signal[200:] + torch.randn(100, 3, generator=g),
    )
    pixels = HeadFeatures.standardized(
        "pixels", torch.randn(200, 5, generator=g), torch.randn(100, 5, generator=g)
    )
    inputs = [backbone, combined([backbone, pixels]), pixels]
    train, test = labels[:200], labels[200:]

    many = rules.score_round(inputs, torch.arange(60), train, test, 3)  # 20 labels a class
    assert many["the backbone alone"] > 0.8 and many["pixels alone"] < 0.6
    assert many["salal's rule"] == many["the backbone alone"]  # nothing clearly better
    assert many["the higher accuracy, backbone or pixels"] == many["the backbone alone"]
    few = rules.score_round(inputs, torch.arange(6), train, test, 3)  # two a class
    assert few["salal's rule"] == few["side by side alone"]


def test_the_rules_pick_by_accuracy_or_by_clear_evidence() -> None:
    rules = load_benchmark("input_rules")

    def score(right: list[bool]) -> HeldOutScore:
        return HeldOutScore(1.0, torch.tensor(right))

    # Backbone 5 of 10 right; side by side 6 (one more: not clear); pixels 8 (three more: clear).
    scores = [
        score([True] * 5 + [False] * 5),
        score([True] * 6 + [False] * 4),
        score([True] * 8 + [False] * 2),
    ]
    assert rules.best_of([rules.BACKBONE, rules.PIXELS])(scores) == rules.PIXELS
    assert rules.best_of([rules.BACKBONE, rules.BOTH])(scores) == rules.BOTH
    assert rules.unless_clearly(rules.BACKBONE, rules.BOTH)(scores) == rules.BACKBONE
    assert rules.unless_clearly(rules.BACKBONE, rules.PIXELS)(scores) == rules.PIXELS
    tied = [score([True] * 5 + [False] * 5)] * 3
    assert rules.best_of([rules.BOTH, rules.BACKBONE])(tied) == rules.BOTH  # ties: the earlier
