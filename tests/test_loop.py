"""The loop end to end on drawn images: bookkeeping, every acquisition, pretraining learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from salal_core.acquire import ACQUISITIONS
from salal_core.data import DeviceData, load_dataset
from salal_core.events import EpochEnded, LabelsAdded, QueryReady, Recorder, RoundEnded
from salal_core.factory import build_engine
from salal_core.pretrain import pretrain


def test_rotation_pretraining_rises_clearly_above_chance(
    synthetic_pack: Path, cache_dir: Path
) -> None:
    config = tiny_config(synthetic_pack, cache_dir, **{"pretrain.epochs": 3})
    data = DeviceData(load_dataset(config.data), torch.device("cpu"))
    rec = Recorder()
    _, results = pretrain(config, data, rec, torch.Generator().manual_seed(0))
    epochs = rec.of(EpochEnded)
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert results["rotation_accuracy"] > 0.5  # chance is 0.25
    assert all(e.images_per_second > 0 for e in epochs)


def run_engine(pack: Path, cache: Path, out: Path, **overrides):
    rec = Recorder()
    engine = build_engine(tiny_config(pack, cache, **overrides), out, emit=rec)
    summary = engine.run()
    return engine, summary, rec


def test_loop_bookkeeping_uses_global_indices(
    synthetic_pack: Path, cache_dir: Path, tmp_path: Path
) -> None:
    engine, summary, rec = run_engine(synthetic_pack, cache_dir, tmp_path / "run")
    truth = engine.images.train.labels
    n = len(truth)
    labeled: set[int] = set()
    initial = round(0.2 * n)
    for event in rec.events:
        if isinstance(event, QueryReady):
            asked = [q.index for q in event.queries]
            assert len(set(asked)) == len(asked)
            assert not labeled & set(asked), "asked about an item already labeled"
            assert all(0 <= i < n for i in asked)
        if isinstance(event, LabelsAdded):
            assert not labeled & set(event.indices), "labeled twice"
            assert list(event.labels) == truth[list(event.indices)].tolist()
            labeled |= set(event.indices)
    assert len(labeled) == summary["labeled"] == round(0.5 * n)
    added = rec.of(LabelsAdded)
    assert (added[0].oracle, len(added[0].indices)) == ("initial", initial)
    assert {e.oracle for e in added[1:]} == {"auto"}
    rounds = rec.of(RoundEnded)
    assert [r.labeled for r in rounds] == [initial + i * round(0.1 * n) for i in range(4)]
    assert [p["labeled"] for p in summary["curve"]] == [r.labeled for r in rounds]
    state = engine.loop.state
    assert set(state.pool_indices()).isdisjoint(state.labeled_indices())
    assert len(state.pool_indices()) + len(state.labeled_indices()) == n
    assert np.array_equal(state.labels[state.labeled_indices()], truth[state.labeled_indices()])
    assert sorted(engine_labels(tmp_path / "run")) == sorted(state.labeled_indices().tolist())
    assert summary["final_test_accuracy"] > 0.25  # four colours: chance is 0.25


def engine_labels(run_dir: Path) -> list[int]:
    from salal_core.store import RunStore

    store = RunStore(run_dir, create=False)
    try:
        return list(store.labels())
    finally:
        store.close()


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_every_acquisition_runs_a_round(
    name: str, synthetic_pack: Path, cache_dir: Path, tmp_path: Path
) -> None:
    _, summary, rec = run_engine(
        synthetic_pack,
        cache_dir,
        tmp_path / name,
        **{"active.acquisition": name, "active.budget": 0.3, "pretrain.epochs": 0},
    )
    assert [p["labeled"] for p in summary["curve"]] == [32, 48]
    if ACQUISITIONS[name].committee:
        queries = rec.of(QueryReady)[0].queries
        assert len({q.score for q in queries}) >= 1
    assert all(q.round == 1 for q in rec.of(QueryReady)[0].queries)


def test_runs_are_reproducible_for_a_seed(
    synthetic_pack: Path, cache_dir: Path, tmp_path: Path
) -> None:
    kw = {"active.budget": 0.3, "pretrain.epochs": 0, "active.acquisition": "random"}
    _, _, a = run_engine(synthetic_pack, cache_dir, tmp_path / "a", **kw)
    _, _, b = run_engine(synthetic_pack, cache_dir, tmp_path / "b", **kw)
    assert [q.index for q in a.of(QueryReady)[0].queries] == [
        q.index for q in b.of(QueryReady)[0].queries
    ]
