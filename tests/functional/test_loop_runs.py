"""Whole runs on drawn images for the loop's real path: pretraining learns, every label lands
once, a cold start runs through the real learner, a slow warm-up is not a collapse."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import run_engine, tiny_config
from salal_core.data import DeviceData, load_dataset
from salal_core.events import (
    EpochEnded,
    LabelsAdded,
    PhaseChanged,
    QueryReady,
    Recorder,
    RoundEnded,
)
from salal_core.learn.pretrain import pretrain

N, CLASSES = 100, 4


def test_rotation_pretraining_rises_clearly_above_chance(
    synthetic_pack: Path, cache_dir: Path
) -> None:
    # Five epochs: at three, a width-4 network's outcome swung between 0.49 and 1.0 with the
    # number of CPU threads (the order of its float sums); at five it is 0.81 or more either way.
    config = tiny_config(synthetic_pack, cache_dir, **{"pretrain.epochs": 5})
    data = DeviceData(load_dataset(config.data), torch.device("cpu"))
    rec = Recorder()
    _, results = pretrain(config, data, rec, torch.Generator().manual_seed(0))
    epochs = rec.of(EpochEnded)
    assert [e.epoch for e in epochs] == [1, 2, 3, 4, 5]
    assert results["rotation_accuracy"] > 0.5  # chance is 0.25
    assert all(e.images_per_second > 0 for e in epochs)


def test_a_whole_run_labels_each_item_once_from_the_ground_truth(
    synthetic_pack: Path, cache_dir: Path, tmp_path: Path
) -> None:
    config = tiny_config(synthetic_pack, cache_dir)
    summary, rec = run_engine(config, tmp_path / "run")
    truth = load_dataset(config.data).train.labels
    n = len(truth)
    labeled: set[int] = set()
    for event in rec.events:
        if isinstance(event, QueryReady):
            asked = {q.index for q in event.queries}
            assert len(asked) == len(event.queries) and not labeled & asked
        if isinstance(event, LabelsAdded):
            assert not labeled & set(event.indices), "labeled twice"
            assert list(event.labels) == truth[list(event.indices)].tolist()
            labeled |= set(event.indices)
    assert len(labeled) == summary.labeled == round(0.5 * n)
    added = rec.of(LabelsAdded)
    assert (added[0].oracle, len(added[0].indices)) == ("initial", round(0.2 * n))
    assert {e.oracle for e in added[1:]} == {"auto"}
    assert [p.labeled for p in summary.curve] == [r.labeled for r in rec.of(RoundEnded)]
    assert summary.stop_reason == "budget"
    assert (summary.final_accuracy or 0.0) > 0.25  # four colours: chance is 0.25


@pytest.mark.parametrize("acquisition", ["coreset", "badge"])
def test_a_cold_start_run_through_the_real_learner(
    acquisition: str, synthetic_pack: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """Zero labels: typiclust on the pretrained features picks the first batch; then the
    strategy (here one that measures distances to the labeled set, or gradients) takes over."""
    config = tiny_config(
        synthetic_pack,
        cache_dir,
        **{"active.acquisition": acquisition, "active.initial_fraction": 0.0, "active.budget": 0.2},
    )
    summary, rec = run_engine(config, tmp_path / "run")
    scoring = [e.detail.split()[0] for e in rec.of(PhaseChanged) if e.phase == "scoring"]
    assert scoring[0] == "typiclust" and set(scoring[1:]) == {acquisition}
    assert [p.labeled for p in summary.curve] == [16, 32]
    assert summary.labeled == 32 and summary.stop_reason == "budget"


def test_a_slow_start_in_the_warm_up_is_not_a_collapse(
    synthetic_pack: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """As the keypress benchmark's 40-epoch rounds start: two epochs near ln(classes) inside
    the warm-up are the rate still climbing, not a collapse."""
    from salal_core.learn import train, watch

    real = train.train_epoch
    calls: list[int] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        stats = real(*args, **kwargs)
        return train.EpochStats(math.log(4), 0.25, stats.images, stats.seconds)  # flat

    config = tiny_config(
        synthetic_pack,
        cache_dir,
        **{
            "pretrain.epochs": 0,
            "active.epochs_per_round": 20,
            "active.optim.warmup": 0.1,
            "active.finetune_from": 0,  # the whole network fine-tunes from the first labels
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "train_epoch", slow)
        patch.setattr(watch, "COLLAPSED_EPOCHS", 2)
        patch.setattr(watch, "COLLAPSE_MIN_STEPS", 0)
        summary, _ = run_engine(config, tmp_path / "run")
    # Epochs 1-2 are the warm-up (10% of 20); from epoch 3 the streak counts: stopped at 4.
    assert summary.stop_reason == "collapsed" and len(calls) == 4
    assert "from epoch 3 the loss sits at ln 4" in summary.stop_detail
