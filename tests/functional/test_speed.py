"""The speed switches: torch.compile learns what eager learns, runs from the command line, and
`salal-core bench --ablate` times each switch.

Compiling goes through the "aot_eager" backend here: it traces the same whole graphs (a graph
break fails, as fullgraph=True makes it) without inductor's minutes of C++ on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from helpers import ROUNDS, drawn_data, tiny_cli
from salal_core import runtime
from salal_core.cli.commands.bench import ABLATIONS, parse_ablations
from salal_core.cli.main import main
from salal_core.config import PRESETS, OptimConfig, SpeedConfig, with_overrides
from salal_core.config_io import load_toml
from salal_core.data.device_data import DeviceData
from salal_core.errors import SalalError
from salal_core.learn.inference import evaluate, predict
from salal_core.learn.pretrain import build_model
from salal_core.learn.train import make_optimizer, make_schedule, train_epoch

CPU = torch.device("cpu")


@pytest.fixture
def traced_compile(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(runtime, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    counters.clear()
    yield
    runtime.configure(CPU)  # the switches are process-wide: leave the next test the defaults
    torch._dynamo.reset()


def train_once(compiled: bool, data: DeviceData) -> tuple[float, float, torch.Tensor]:
    runtime.configure(CPU, SpeedConfig(compile="default" if compiled else "off"))
    torch.manual_seed(0)
    config = with_overrides(PRESETS["tiny"], {"model.width": 4})
    model = build_model(config, 4, CPU)
    cfg = OptimConfig(lr=0.05, batch_size=16)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_schedule(optimizer, cfg, 3)
    generator = torch.Generator().manual_seed(1)
    all_items = torch.arange(data.num_train)
    stats = train_epoch(
        model,
        optimizer,
        scheduler,
        data,
        all_items,
        None,
        steps=len(all_items) // 16,
        batch_size=16,
        generator=generator,
    )
    _, accuracy = evaluate(model, data.test_images, None, data, batch_size=32)
    weights = model.backbone.stem[0].weight.detach().clone()
    assert next(iter(model.state_dict())) == "backbone.stem.0.weight"  # checkpoints keep plain keys
    return stats.loss, accuracy, weights


def test_compiled_network_learns_what_the_eager_one_learns(traced_compile: None) -> None:
    data = drawn_data()
    eager_loss, eager_acc, eager_weights = train_once(False, data)
    assert counters["stats"]["unique_graphs"] == 0
    loss, acc, weights = train_once(True, data)
    # One graph for training batches, one for evaluation: whole graphs, no breaks.
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
    assert loss == pytest.approx(eager_loss, rel=1e-4)
    assert acc == pytest.approx(eager_acc, abs=1 / 48)
    torch.testing.assert_close(weights, eager_weights, rtol=1e-4, atol=1e-5)


def test_run_with_compile_from_the_command_line(
    traced_compile: None, synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "run"
    args = tiny_cli("run", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    args += ["--compile", "default"]
    assert main(args) == 0
    notice = "torch.compile (default) is on: the first steps of each phase compile"
    assert notice in capsys.readouterr().err  # said before the first step stalls
    assert load_toml(out / "config.toml").speed.compile == "default"
    assert counters["stats"]["unique_graphs"] >= 3  # pretraining, fine-tuning, scoring
    assert not counters["graph_break"]
    payload = torch.load(out / "checkpoints" / "round-0001.pt", weights_only=True)  # the last
    assert "backbone.stem.0.weight" in payload["model"]


def test_bench_ablation_times_each_switch(
    traced_compile: None, synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    args = tiny_cli("bench", synthetic_pack, None, tmp_path / "c", "--steps", "2")
    code = main([*args, "--no-end-to-end", "--ablate", "as-configured,fp32,compile"])
    assert code == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    ablation = result["ablation"]
    assert "done fine-tuning (compile)" in captured.err
    assert "one speed switch changed at a time" in captured.err
    assert list(ablation) == ["as-configured", "fp32", "compile"]
    assert ablation["fp32"] == {"skipped": "differs only on CUDA"}
    assert ablation["as-configured"]["speed"] == result["speed"]
    assert ablation["compile"]["speed"]["compile"] == "default"
    for name in ("as-configured", "compile"):
        figures = ablation[name]
        assert figures["pretrain"]["images_per_second"] > 0
        assert figures["finetune"]["warmup_seconds"] > 0
        assert figures["score_pool"]["seconds"] > 0
        assert figures["pretrain"]["host_syncs_per_epoch"] is None  # counted on CUDA only
    assert counters["stats"]["unique_graphs"] >= 3  # the compile variant really compiled
    assert runtime._speed == SpeedConfig()  # and the run's own settings came back after it


def test_ablation_names() -> None:
    assert parse_ablations(None) == []
    assert parse_ablations("all") == list(ABLATIONS)
    assert parse_ablations("fp32, nchw") == ["fp32", "nchw"]
    with pytest.raises(SalalError, match="unknown --ablate variant bf8; choose from: all,"):
        parse_ablations("fp32,bf8")


HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


@pytest.fixture
def host_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every place our Python code reads a tensor back to the host, which on a GPU waits for
    all queued work: a sync. Counted by name, so a test can say how many a phase may make."""
    reads: list[str] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args, _name: str = name, _original=original, **kw):
            reads.append(_name)
            return _original(self, *args, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads


@pytest.mark.parametrize("batches", [3, 6])
def test_host_reads_do_not_grow_with_the_number_of_batches(
    host_reads: list[str], batches: int
) -> None:
    """One sync per epoch and per evaluation, none per step, whatever the epoch's length."""
    data = drawn_data(n=16 * batches)
    runtime.configure(CPU)
    config = with_overrides(PRESETS["tiny"], {"model.width": 2, "active.committee": 3})
    model = build_model(config, 4, CPU, members=3)  # a committee: the bootstrap path too
    cfg = OptimConfig(batch_size=16)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_schedule(optimizer, cfg, batches)
    everything = torch.arange(data.num_train)
    host_reads.clear()
    train_epoch(
        model,
        optimizer,
        scheduler,
        data,
        everything,
        data.train_labels,
        steps=batches,
        batch_size=16,
    )
    assert host_reads == ["tolist"]  # the epoch's loss, accuracy and count, in one read
    host_reads.clear()
    evaluate(model, data.test_images, None, data, batch_size=16)
    evaluate(model, data.test_images, data.test_labels, data, batch_size=16)
    assert host_reads == ["tolist"] * 2
    host_reads.clear()
    predict(model, data.test_images, data, batch_size=16)
    assert host_reads == []


def test_the_pool_pass_copies_what_a_graph_replay_would_overwrite() -> None:
    """With CUDA graphs, every replay writes its outputs into the same buffers. A model that
    does just that: the pool pass must still return each batch's own values."""
    from salal_core.learn.inference import pool_pass

    data = drawn_data(n=32)
    runtime.configure(CPU)
    model = build_model(with_overrides(PRESETS["tiny"], {"model.width": 2}), 4, CPU)
    real_score = model.score
    buffers: dict[str, torch.Tensor] = {}

    def replayed(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs = real_score(x)
        for name, out in zip(("logits", "features", "embedding"), outputs, strict=True):
            buffers.setdefault(name, torch.empty_like(out)).copy_(out)
        return buffers["logits"], buffers["features"], buffers["embedding"]

    model.score = replayed  # type: ignore[method-assign]
    _, features, embeddings = pool_pass(model, data.train_images, data, batch_size=16)
    model.score = real_score  # type: ignore[method-assign]
    _, own_features, own = pool_pass(model, data.train_images, data, batch_size=16)
    torch.testing.assert_close(embeddings, own)
    torch.testing.assert_close(features, own_features)
    assert not torch.equal(embeddings[:16], embeddings[16:])
