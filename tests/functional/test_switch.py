"""The switch from the head on frozen features to fine-tuning, decided by cross-validation on
a round's own labels (`salal_core/learn/switch.py`)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers import drawn_data, run_engine, tiny_config
from salal_core.events import EpochEnded, Notice, PhaseChanged, PhaseStarted, Recorder
from salal_core.learn import learner, switch
from salal_core.learn.learner import TorchLearner
from salal_core.learn.model import Net
from salal_core.learn.switch import SwitchVerdict, folds_of, settled


def test_folds_spread_every_class_over_the_folds_in_position_order() -> None:
    classes = np.array([2, 0, 0, 1, 0, 1, 1, 2, 2, 0])
    fold = folds_of(classes, 3)
    for c in range(3):
        held = fold[classes == c]
        assert len(set(held[:3].tolist())) == 3  # a class's first three labels, three folds
    assert np.bincount(fold).tolist() == [4, 3, 3]
    assert folds_of(classes, 3).tolist() == fold.tolist()


def test_fine_tuning_is_kept_where_it_is_not_worse_than_the_head() -> None:
    assert SwitchVerdict(3, 20, 7, 7, 3).fine_tune
    assert SwitchVerdict(3, 20, 7, 8, 3).fine_tune
    assert not SwitchVerdict(3, 20, 8, 7, 3).fine_tune
    said = SwitchVerdict(3, 20, 8, 7, 3).describe(2)
    assert said.startswith("round 2: 3-fold") and "head 8 right, fine-tuned 7:" in said
    assert said.endswith("the head on frozen features")
    early = SwitchVerdict(3, 20, 8, 9, 2).describe(0)
    assert "head 8 right, fine-tuned 9 in 2 folds, enough: fine-tuning" in early
    assert "no fine-tuned copy needed: fine-tuning" in SwitchVerdict(3, 10, 0, 0, 0).describe(0)


def test_the_folds_stop_only_where_the_rest_cannot_change_the_verdict() -> None:
    """Every way the unseen labels could come out gives the verdict `settled` foresaw; where it
    is not settled, some way gives each verdict."""
    for head, tuned, unseen in itertools.product(range(8), range(8), range(8)):
        outcomes = {tuned + more >= head for more in range(unseen + 1)}
        assert settled(head, tuned, unseen) == (len(outcomes) == 1)


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
        indices, labels = args[4], args[5]
        sizes = np.bincount(folds_of(labels[indices], verdict.folds))
        unseen = int(sizes[verdict.finetuned_folds :].sum())
        if verdict.finetuned_folds < verdict.folds:  # stopped early: only once it was decided
            assert settled(verdict.head_right, verdict.finetuned_right, unseen)
        if forced is not None:
            head = verdict.labels if not forced else 0
            verdict = SwitchVerdict(
                verdict.folds, verdict.labels, head, verdict.labels - head, verdict.finetuned_folds
            )
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
    fine_tuned_folds = sum(v.finetuned_folds for v in verdicts)
    assert len(fold_phases) == fine_tuned_folds + sum(v.fine_tune for v in verdicts)  # the bars
    moved = [not a.equal(b) for a, b in itertools.pairwise(backbones)]
    assert moved == [v.fine_tune for v in verdicts[:-1]]
    if forced is not None:
        assert all(v.fine_tune is forced for v in verdicts)


def one_label_a_class_round(overrides: dict[str, Any]) -> tuple[Recorder, bool]:
    """Round 0 on a 48-image folder with one label in each of its 4 classes, below
    `finetune_from` and checked from 2 labels (plus `overrides`): what the learner said, and
    whether the backbone moved."""
    data = drawn_data(48)
    labels = data.train_labels.numpy()
    indices = np.array([int(np.flatnonzero(labels == c)[0]) for c in range(4)])
    config = tiny_config(
        Path("unused"),
        Path("unused"),
        **{"active.finetune_from": 1000, "active.cross_validate_from": 2, **overrides},
    )
    model = Net(width=4, classes=4, members=1, head_input="all-stages")
    before = backbone_vector(model)
    rec = Recorder()
    TorchLearner(config, model, data, torch.Generator().manual_seed(0), rec).fit(
        indices, labels, 0, None
    )
    return rec, not backbone_vector(model).equal(before)


def test_with_one_label_a_class_the_check_fine_tunes_no_copy() -> None:
    """A held-out label whose class has no other label is right for neither learner: the heads
    get none right, fine-tuning cannot be worse, and the check decides without training a copy."""
    rec, _ = one_label_a_class_round({})
    assert [n.message for n in rec.of(Notice)] == [
        "round 0: 3-fold cross-validation on 4 labels: head 0 right, no fine-tuned copy needed: "
        "fine-tuning the network"
    ]
    assert len(rec.of(PhaseStarted)) == 1  # the round's own training, and no fold's


@pytest.mark.parametrize("below", [48, 49, 0])
def test_the_check_runs_only_on_folders_under_cross_validate_below(below: int) -> None:
    """On a 48-image folder the switch is cross-validated where `cross_validate_below` is above
    48 or 0 (any size); at 48 the round fits the head on frozen features without asking, and
    the backbone stays as pretrained."""
    rec, moved = one_label_a_class_round({"active.cross_validate_below": below})
    checked = below != 48
    assert any("cross-validation" in n.message for n in rec.of(Notice)) is checked
    training = [e.detail for e in rec.of(PhaseChanged) if e.phase == "training"]
    assert training[-1].endswith("the head on frozen features") is not checked
    assert moved is checked
