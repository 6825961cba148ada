"""The pretraining-budget study runs end to end on a small drawn folder: each WIDTHxEPOCHS
candidate is pretrained once for exactly its epochs, probed on the same random labels as the
others, and paired against raw pixels and the first candidate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_benchmark, write_image_folder

WIDTH = 4


def test_each_candidate_pretrains_once_and_is_paired_against_pixels_and_the_first(
    tmp_path: Path,
) -> None:
    study = load_benchmark("pretrain_budget")
    folder = write_image_folder(tmp_path / "shapes", per_class_train=12, per_class_test=5)
    argv = [
        "--folder", str(folder),
        "--candidates", f"{WIDTH}x1,{WIDTH}x2",
        "--seeds", "2",
        "--out", str(tmp_path / "budget"),
        "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    report = study.main(argv)
    assert report["budgets"] == [10, 20, 40]  # 48 images: the budgets below the folder's size
    first, second = report["backbones"]
    assert [first["candidate"], second["candidate"]] == ["width 4, 1 epoch", "width 4, 2 epochs"]
    for row, epochs in ((first, 1), (second, 2)):
        summary = json.loads((tmp_path / "budget" / f"w4-e{epochs}" / "summary.json").read_text())
        assert summary["epochs"] == epochs  # no step floor stretches a candidate's epochs
        assert row["pretrain_seconds"] == summary["seconds"] > 0
        assert row["dims"] == (1 + 1 + 2 + 4 + 8) * WIDTH  # every stage, pooled
        assert len(row["runs"]) == 2 and all(len(r) == 3 for r in row["runs"])
        assert abs(row["aubc"] - sum(map(sum, row["runs"])) / 6) < 1e-9
    assert first["minus_first"]["mean"] == 0.0
    pixels = sum(report["raw_pixels"]) / 3
    assert abs(second["minus_pixels"]["mean"] - (second["aubc"] - pixels)) < 1e-9

    def pretrain_again(*_: object, **__: object) -> None:
        raise AssertionError("a candidate with a checkpoint was pretrained again")

    study.pretrain_into = pretrain_again
    again = study.main(argv)
    assert [r["aubc"] for r in again["backbones"]] == [first["aubc"], second["aubc"]]


def test_a_candidate_that_is_not_width_x_epochs_is_one_line() -> None:
    study = load_benchmark("pretrain_budget")
    with pytest.raises(SystemExit) as stopped:
        study.Candidate.parse("16-8")
    assert str(stopped.value) == "--candidates: '16-8' is not WIDTHxEPOCHS, e.g. 16x8"
