"""The engine in a child process: events and answers cross the pipe, its errors come back as
one line, and a child that dies or dawdles never takes the app with it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import tiny_config
from salal_core.errors import SalalError
from salal_core.events import DataLoaded, Event, QueryReady, RunFinished
from salal_core.factory import build_engine
from salal_core.store import RunStore
from salal_core.worker import EngineProcess


def test_a_human_session_across_the_pipe(synthetic_pack: Path, tmp_path: Path) -> None:
    config = tiny_config(
        synthetic_pack,
        tmp_path / "c",
        **{"active.query_size": 6, "active.lookahead": 1, "active.budget": 0.25},
    )
    engine = build_engine(config, tmp_path / "run", oracle="human")
    events: list[Event] = []
    runner = EngineProcess(engine, events.append)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(runner.run()))
    thread.start()
    answered = {}
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        query = engine.oracle.current()
        if query is None:
            time.sleep(0.01)
            continue
        label = int(engine.images.train.labels[query.index])  # loaded here, from the cache
        engine.oracle.answer(query.index, label)
        answered[query.index] = label
    thread.join(timeout=5)
    assert not thread.is_alive()
    kinds = [type(e) for e in events]
    assert kinds[0] is not RunFinished and DataLoaded in kinds and QueryReady in kinds
    assert isinstance(events[-1], RunFinished)
    assert (
        result["labeled"] == result["target"] and result["human_agreement_with_ground_truth"] == 1
    )
    store = RunStore(tmp_path / "run", create=False, lock=False)
    try:  # every answer given here is in the journal the child trained from
        human = {i: r.label for i, r in store.labels().items() if r.oracle == "human"}
    finally:
        store.close()
    assert human == answered and len(human) == result["human_labels"]


def test_an_engine_error_comes_back_as_its_one_line(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(12):
        Image.new("RGB", (16, 16), (i * 20, 40, 90)).save(pool / f"{i}.png")
    config = tiny_config(pool, tmp_path / "c")
    engine = build_engine(config, tmp_path / "run", oracle="human")
    with pytest.raises(SalalError, match="has no class folders; name the classes"):
        EngineProcess(engine, lambda e: None).run()


def test_a_killed_engine_is_reported_with_where_to_look(synthetic_pack: Path, tmp_path: Path):
    config = tiny_config(synthetic_pack, tmp_path / "c", **{"pretrain.epochs": 50})
    engine = build_engine(config, tmp_path / "run", oracle="auto")
    runner = EngineProcess(engine, lambda e: None)

    def kill_when_started() -> None:
        while runner.process is None or runner.process.pid is None:
            time.sleep(0.05)
        time.sleep(1)
        os.kill(runner.process.pid, signal.SIGKILL)

    threading.Thread(target=kill_when_started, daemon=True).start()
    with pytest.raises(
        SalalError, match=r"engine process stopped unexpectedly.*engine\.log.*--resume"
    ):
        runner.run()


def test_stop_ends_a_long_run_promptly(synthetic_pack: Path, tmp_path: Path) -> None:
    config = tiny_config(synthetic_pack, tmp_path / "c", **{"pretrain.epochs": 500})
    engine = build_engine(config, tmp_path / "run", oracle="auto")
    seen = threading.Event()
    runner = EngineProcess(engine, lambda e: seen.set())
    threading.Timer(0.1, lambda: seen.wait(60) and runner.stop()).start()
    started = time.monotonic()
    result = runner.run()
    assert result["stopped_early"] and time.monotonic() - started < 60
    assert not runner.process.is_alive()
