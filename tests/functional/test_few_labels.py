"""A model worth having from the first labels: phases in optimizer steps, BatchNorm statistics
that fit the weights, the head fit on frozen features below `finetune_from`, and a collapse
rule that waits for enough steps and never strands a person's labels."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from helpers import drawn_data, run_engine, tiny_config
from salal_core.config import HEAD_INPUTS, PRESETS, HeadInput
from salal_core.errors import Collapsed
from salal_core.events import EpochEnded, Notice, QueryReady, Recorder
from salal_core.learn import train
from salal_core.learn.batchnorm import recalibrate
from salal_core.learn.frozen import FrozenFeatures, fit_head
from salal_core.learn.model import Net
from salal_core.learn.probe import probe_probs, standardize
from salal_core.learn.train import fit, steps_per_epoch


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_cifar10_keeps_its_step_counts_and_its_fine_tuning(name: str) -> None:
    """On the full 50,000-image training set nothing changes: 97 full batches of 512 an epoch
    in pretraining and 19 on the 10,000 labels of 20%, and 20% is fine-tuned as before."""
    config = PRESETS[name]
    pre, act = config.pretrain, config.active
    assert steps_per_epoch(50_000, 512, pre.epochs, pre.optim.min_steps) == 50_000 // 512
    assert steps_per_epoch(10_000, 512, act.epochs_per_round, act.optim.min_steps) == 19
    assert act.finetune_from <= 10_000


def test_a_small_set_goes_round_its_images_for_the_minimum_steps() -> None:
    assert steps_per_epoch(300, 128, 8, 300) == 38  # 8 epochs x 38 >= 300
    assert steps_per_epoch(300, 128, 8, 0) == 2
    assert steps_per_epoch(20, 64, 5, 0) == 1


def test_recalibrated_statistics_are_the_mean_of_the_batch_statistics() -> None:
    """The running mean of the first BatchNorm is the mean over batches of its input's batch
    means, computed here by hand, whatever stale value it held before."""
    data = drawn_data(64)
    model = Net(width=4, classes=4)
    stem_bn = model.backbone.stem[1]
    assert isinstance(stem_bn, nn.BatchNorm2d)
    stem_bn.running_mean.fill_(50.0)
    rows = torch.arange(64)
    recalibrate(model, data, rows, rotate=False)
    with torch.no_grad():
        means = []
        for chunk in torch.tensor_split(rows, 1):
            x = standardize_images(data, chunk)
            means.append(model.backbone.stem[0](x).mean(dim=(0, 2, 3)))
    assert torch.allclose(stem_bn.running_mean, torch.stack(means).mean(0), atol=1e-5)


def standardize_images(data: Any, rows: torch.Tensor) -> torch.Tensor:
    return (data.train_images[rows].float() / 255 - data.mean.view(1, -1, 1, 1)) / data.std.view(
        1, -1, 1, 1
    )


@pytest.mark.parametrize("head_input", HEAD_INPUTS)
def test_the_network_predicts_exactly_what_the_head_fit_found(head_input: HeadInput) -> None:
    """The fit runs on standardized features; folded into the linear layer, the network's
    own forward pass gives the same probabilities, for one head and for a committee, whatever
    the head reads."""
    data = drawn_data(48)
    for members in (1, 3):
        model = Net(width=4, classes=4, members=members, head_input=head_input)
        features = FrozenFeatures.compute(model, data, batch_size=16)
        positions = torch.arange(0, 48, 2)
        targets = data.train_labels[positions]
        generator = torch.Generator().manual_seed(0)
        fit_head(model, features, data, positions, targets, generator)
        model.eval()
        with torch.no_grad():
            x = standardize_images(data, torch.arange(48))
            network = model(x).softmax(-1).permute(1, 0, 2)  # (K, N, C)
            cached = features.scores(model, torch.arange(48))[0]
        assert torch.allclose(network, cached, atol=1e-4)
        d = features.stages.head.shape[1]
        assert d == model.backbone.head_dim(head_input)
        w = torch.cat(
            [
                model.head.linear.weight.view(members, 4, d).permute(0, 2, 1)
                * features.std[:, None],
                (
                    model.head.linear.bias.view(members, 4)
                    + torch.einsum(
                        "d,kdc->kc",
                        features.mean,
                        model.head.linear.weight.view(members, 4, d).permute(0, 2, 1),
                    )
                )[:, None, :],
            ],
            1,
        )
        again = probe_probs(w, standardize(features.stages.head, features.mean, features.std))
        assert torch.allclose(again, cached, atol=1e-4)


def flat_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every epoch at ln 4 and chance accuracy: what a collapse looks like."""
    real = train.train_epoch

    def flat(*args: Any, **kwargs: Any) -> train.EpochStats:
        stats = real(*args, **kwargs)
        return train.EpochStats(math.log(4), 0.25, stats.images, stats.seconds)

    monkeypatch.setattr(train, "train_epoch", flat)


def fit_flat(data: Any, epochs: int, min_steps: int, on_collapse: train.CollapseRule) -> Recorder:
    rec = Recorder()
    cfg = PRESETS["tiny"].active.optim
    cfg = type(cfg)(**{**cfg.__dict__, "batch_size": 16, "warmup": 0.0, "min_steps": min_steps})
    fit(
        Net(width=4, classes=4),
        data,
        torch.arange(32),
        data.train_labels,
        cfg,
        epochs,
        phase="finetune",
        round_=0,
        evaluate_fn=lambda: (1.0, 0.5),
        emit=rec,
        on_collapse=on_collapse,
    )
    return rec


def test_no_collapse_is_judged_before_the_minimum_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    flat_epochs(monkeypatch)
    data = drawn_data(32)
    fit_flat(data, epochs=6, min_steps=0, on_collapse="stop")  # 12 steps: too few to judge
    with pytest.raises(Collapsed, match="or use --preset cpu"):
        fit_flat(data, epochs=6, min_steps=120, on_collapse="stop")  # 20 a epoch: judged


def test_a_persons_session_is_warned_of_a_collapse_and_carries_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flat_epochs(monkeypatch)
    rec = fit_flat(drawn_data(32), epochs=6, min_steps=120, on_collapse="warn")
    warnings = [n.message for n in rec.of(Notice) if "collapsed" in n.message]
    assert len(warnings) == 1 and warnings[0].endswith("labeling carries on")
    assert len(rec.of(EpochEnded)) == 6  # every epoch ran


def test_a_300_image_folder_pretrains_sanely_and_learns_from_24_labels(
    shared_slice: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """The cpu recipe on 300 CIFAR images (10 classes), 8% labeled: pretraining's held-out
    loss stays in the range of its training loss, round 0 trains on 24 labels without a stop,
    its accuracy beats chance, and the next batch is asked."""
    config = tiny_config(
        shared_slice,
        cache_dir,
        **{
            "preset": "cpu",
            "model.width": 8,
            "pretrain.epochs": 4,
            "pretrain.optim.min_steps": 40,
            # The cpu recipe's rounds: however few the labels, at least this many steps.
            "active.optim.min_steps": PRESETS["cpu"].active.optim.min_steps,
            "active.initial_fraction": 0.08,
            "active.budget": 0.2,
            "active.query_size": 24,
        },
    )
    config = type(config)(**{**config.__dict__, "preset": "cpu"})
    summary, rec = run_engine(config, tmp_path / "run")
    pretraining = [e for e in rec.of(EpochEnded) if e.phase == "pretrain"]
    assert len(pretraining) == 4
    for epoch in pretraining[1:]:  # the first epoch is still the warm-up's start
        assert epoch.test_loss < 1.5 * max(epoch.loss, math.log(4))
    assert summary.stop_reason == "budget", summary.stop_detail
    first = summary.curve[0]
    assert first.labeled == 24 and first.test_accuracy > 0.1
    asked = [q for q in rec.of(QueryReady) if q.round == 1]
    assert asked and len(asked[0].queries) == 24


def test_the_learner_fits_the_head_below_finetune_from_and_fine_tunes_from_it(
    synthetic_pack: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """32 labels then 48 then 64, switching at 48: round 0 fits the head on frozen features
    (one step, no optimizer state), rounds 1 and 2 fine-tune the network. The test split is
    measured once an epoch and the round's accuracy is its last epoch's, not measured again."""
    from salal_core.events import PhaseChanged, PhaseStarted
    from salal_core.learn import learner

    passes: list[int] = []
    real_evaluate = learner.evaluate

    def counted(*args: Any, **kwargs: Any) -> tuple[float, float]:
        passes.append(len(args[1]))
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(learner, "evaluate", counted)
    config = tiny_config(
        synthetic_pack,
        cache_dir,
        **{"active.finetune_from": 48, "active.budget": 0.4, "active.epochs_per_round": 2},
    )
    summary, rec = run_engine(config, tmp_path / "run")
    assert [p.labeled for p in summary.curve] == [32, 48, 64]
    training = [e.detail for e in rec.of(PhaseChanged) if e.phase == "training"]
    assert "head on frozen features" in training[0]
    assert all("frozen" not in t for t in training[1:])
    rounds = [e for e in rec.of(PhaseStarted) if e.phase == "finetune"]
    assert [(e.round, e.epochs) for e in rounds] == [(0, 1), (1, 2), (2, 2)]
    assert len(passes) == 4  # the two fine-tuning rounds' epochs; round 0 reuses its features
    assert len(set(passes)) == 1  # each a pass over the whole test split, nothing else
    last_epochs = [e for e in rec.of(EpochEnded) if e.phase == "finetune" and e.epoch == e.epochs]
    assert [p.test_accuracy for p in summary.curve] == [e.test_accuracy for e in last_epochs]
