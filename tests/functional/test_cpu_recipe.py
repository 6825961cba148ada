"""On a machine without CUDA, the default recipe is the one sized for a CPU, the run says so,
every bar shows the time left, and a phase that would run past an hour says so first, with
the flags that shorten it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from helpers import ROUNDS
from salal_core.cli.main import main
from salal_core.cli.options import config_from_args, default_preset
from salal_core.learn import watch


def test_without_cuda_the_default_recipe_is_the_cpu_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_preset(None) == default_preset("auto") == default_preset("cpu") == "cpu"
    assert default_preset("cuda") == "fast"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_preset(None) == "fast" and default_preset("cpu") == "cpu"
    config = config_from_args(argparse.Namespace(preset=None, device="cpu"))
    assert (config.preset, config.model.width, config.pretrain.limit) == ("cpu", 8, 5000)
    # A person's default takes a pretrained backbone where one is at hand; a preset named on
    # the command line keeps its rotation network.
    assert config.model.backbone == "auto"
    named = config_from_args(argparse.Namespace(preset="cpu", device="cpu"))
    assert named.model.backbone == "rotnet"


def test_an_hour_long_phase_is_announced_with_its_remedy() -> None:
    assert watch.long_phase("pretrain", 5400) == (
        "rotation pretraining will take about 1 h 30 min at this speed; --pretrain-epochs N, "
        "--train-limit N or --preset cpu shortens it"
    )
    assert "--epochs-per-round N" in watch.long_phase("finetune", 7200)


def test_a_cpu_run_says_its_recipe_and_warns_before_a_long_phase(
    synthetic_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(watch, "LONG_PHASE", 0.0)  # this machine is fast: make any phase long
    out = tmp_path / "run"
    args = ["run", "--data", str(synthetic_pack), "--out", str(out), "--device", "cpu"]
    args += ["--cache-dir", str(tmp_path / "c"), *ROUNDS, "--budget", "0.3"]
    args += ["--width", "4", "--pretrain-steps", "0", "--round-steps", "0"]  # seconds, not minutes
    assert main([*args, "--backbone", "rotnet"]) == 0  # no --preset: the machine picks
    err = capsys.readouterr().err
    assert "the cpu recipe (no GPU here): a width-4 network" in err  # the run's own width
    assert "rotation pretraining will take about" in err and "--preset cpu shortens it" in err
    assert json.loads((out / "summary.json").read_text())["preset"] == "cpu"
