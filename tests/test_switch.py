"""The switch from the head on frozen features to fine-tuning, decided by cross-validation on
a round's own labels (`salal_core/learn/switch.py`)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers import run_engine, tiny_config
from salal_core.events import EpochEnded, Notice, PhaseChanged, PhaseStarted
from salal_core.learn import learner, switch
from salal_core.learn.switch import SwitchVerdict, folds_of


def test_folds_spread_every_class_over_the_folds_in_position_order() -> None:
    classes = np.array([2, 0, 0, 1, 0, 1, 1, 2, 2, 0])
    fold = folds_of(classes, 3)
    for c in range(3):
        held = fold[classes == c]
        assert len(set(held[:3].tolist())) == 3  # a class's first three labels, three folds
    assert np.bincount(fold).tolist() == [4, 3, 3]
    assert folds_of(classes, 3).tolist() == fold.tolist()


def test_fine_tuning_is_kept_where_it_is_not_worse_than_the_head() -> None:
    assert SwitchVerdict(3, 20, 7, 7).fine_tune
    assert SwitchVerdict(3, 20, 7, 8).fine_tune
    assert not SwitchVerdict(3, 20, 8, 7).fine_tune
    said = SwitchVerdict(3, 20, 8, 7).describe(2)
    assert said.startswith("round 2: 3-fold") and "fine-tuned 7 right, head 8" in said
    assert said.endswith("the head on frozen features")


def backbone_vector(model: Any) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.backbone.parameters()]).clone()


@pytest.mark.parametrize("forced", [None, True, False])
def test_a_round_follows_what_cross_validation_says(
    forced: bool | None,
    synthetic_pack: Path,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rounds of 32, 48 and 64 labels, below `finetune_from`, each cross-validated: a round
    fine-tunes the network exactly when its verdict says so, the folds' epochs never reach the
    charts or the journal, and the backbone moves only in a fine-tuning round. `forced` makes
    every verdict one way (None: the measured verdicts)."""
    verdicts: list[SwitchVerdict] = []
    backbones: list[torch.Tensor] = []

    def recorded(model: Any, *args: Any) -> SwitchVerdict:
        backbones.append(backbone_vector(model))
        verdict = switch.cross_validate(model, *args)
        assert backbone_vector(model).equal(backbones[-1])  # the folds train copies
        if forced is not None:
            head = verdict.labels if not forced else 0
            verdict = SwitchVerdict(verdict.folds, verdict.labels, head, verdict.labels - head)
        verdicts.append(verdict)
        return verdict

    monkeypatch.setattr(learner, "cross_validate", recorded)
    config = tiny_config(
        synthetic_pack,
        cache_dir,
        **{
            "active.finetune_from": 1000,
            "active.cross_validate_from": 2,
            "active.budget": 0.4,
            "active.epochs_per_round": 2,
        },
    )
    summary, rec = run_engine(config, tmp_path / "run")
    assert [p.labeled for p in summary.curve] == [32, 48, 64]
    assert [(v.folds, v.labels) for v in verdicts] == [(3, 32), (3, 48), (3, 64)]
    assert all(
        0 <= v.head_right <= v.labels and 0 <= v.finetuned_right <= v.labels for v in verdicts
    )
    said = [n.message for n in rec.of(Notice) if "cross-validation" in n.message]
    assert said == [v.describe(r) for r, v in enumerate(verdicts)]

    training = [e.detail for e in rec.of(PhaseChanged) if e.phase == "training"]
    fitted = [t for t in training if "cross-validating" not in t]
    assert [("frozen" not in t) for t in fitted] == [v.fine_tune for v in verdicts]
    epochs = [(e.round, e.epoch) for e in rec.of(EpochEnded) if e.phase == "finetune"]
    expected = [(r, e) for r, v in enumerate(verdicts) for e in ((1, 2) if v.fine_tune else (1,))]
    assert epochs == expected  # one point a round's epoch: nothing from the folds
    fold_phases = [e for e in rec.of(PhaseStarted) if e.epochs == 2]
    assert len(fold_phases) == 3 * 3 + sum(v.fine_tune for v in verdicts)  # the bars move
    moved = [not a.equal(b) for a, b in itertools.pairwise(backbones)]
    assert moved == [v.fine_tune for v in verdicts[:-1]]
    if forced is not None:
        assert all(v.fine_tune is forced for v in verdicts)
