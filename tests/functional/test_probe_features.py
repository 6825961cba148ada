"""The probe-features study runs end to end on a small drawn folder and a checkpoint written
here: every candidate feature set, the same random labels for each, and raw pixels as the
reference its differences are paired against."""

from __future__ import annotations

from pathlib import Path

import torch

from helpers import load_benchmark, random_backbone, write_image_folder
from salal_core.config import preset, with_overrides
from salal_core.data import DeviceData, load_dataset
from salal_core.learn.frozen import stage_features
from salal_core.learn.model import Net
from salal_core.learn.probe import standardize

WIDTH = 8


def test_every_feature_set_is_probed_on_the_same_labels_against_raw_pixels(
    tmp_path: Path,
) -> None:
    folder = write_image_folder(tmp_path / "shapes", per_class_train=45, per_class_test=10)
    checkpoint = random_backbone(tmp_path / "pretrain.pt", WIDTH)
    report = load_benchmark("probe_features").main(
        [
            "--folder", str(folder),
            "--pretrained", str(checkpoint),
            "--width", str(WIDTH),
            "--seeds", "1",
            "--cache", str(tmp_path / "cache"),
        ]
    )  # fmt: skip
    assert report["budgets"] == [10, 20, 40, 80, 160]
    sets = {s["features"]: s for s in report["sets"]}
    pixels, every_stage = 3 * 32 * 32, (1 + 1 + 2 + 4 + 8) * WIDTH
    assert sets["raw pixels"]["dims"] == pixels
    assert sets["last stage (fast and paper's head)"]["dims"] == 8 * WIDTH
    assert sets["stages 3+4 (the distance embedding)"]["dims"] == 12 * WIDTH
    assert sets["every stage, pooled (the cpu recipe's head)"]["dims"] == every_stage
    assert sets["every stage, 2x2 grid"]["dims"] == 4 * every_stage
    assert sets["raw pixels + every stage, 2x2 grid"]["dims"] == pixels + 4 * every_stage
    assert sets["raw pixels"]["minus_pixels"] == 0.0
    for s in sets.values():
        assert len(s["accuracy"]) == 5 and all(0 <= a <= 1 for a in s["accuracy"])
        assert abs(s["aubc"] - sum(s["accuracy"]) / 5) < 1e-9
    # Four flat colours: a probe on the pixels is right from a few labels on.
    assert sets["raw pixels"]["accuracy"][-1] > 0.9


def test_the_every_stage_set_is_what_the_cpu_recipes_head_reads(tmp_path: Path) -> None:
    """The study's "every stage, pooled" row measures the engine's own all-stages head input."""
    study = load_benchmark("probe_features")
    folder = write_image_folder(tmp_path / "shapes", per_class_train=8, per_class_test=2)
    config = with_overrides(
        preset("cpu"),
        {"device": "cpu", "data.source": str(folder), "data.cache_dir": str(tmp_path / "c")},
    )
    data = DeviceData(load_dataset(config.data, 0), torch.device("cpu"))
    torch.manual_seed(0)
    model = Net(WIDTH, data.num_classes, head_input="all-stages")
    train, _ = study.feature_sets(model, data)["every stage, pooled (the cpu recipe's head)"]
    head = stage_features(model, data.train_images, data, 16).head
    assert torch.allclose(train, standardize(head, head.mean(0), head.std(0)), atol=1e-4)
