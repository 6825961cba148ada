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

from helpers import journal, tiny_config
from salal_core.errors import SalalError
from salal_core.events import DataLoaded, Event, QueryReady, RunFinished
from salal_core.parallel.worker import EngineProcess
from salal_core.run.factory import open_session
from salal_core.run.summary import RunSummary


def test_a_human_session_across_the_pipe(synthetic_pack: Path, tmp_path: Path) -> None:
    config = tiny_config(
        synthetic_pack,
        tmp_path / "c",
        **{"active.query_size": 6, "active.lookahead": 1, "active.budget": 0.25},
    )
    session = open_session(config, tmp_path / "run", oracle="human")
    oracle = session.oracle
    assert oracle is not None
    events: list[Event] = []
    runner = EngineProcess(session, events.append)
    result: list[RunSummary | None] = []
    thread = threading.Thread(target=lambda: result.append(runner.run()))
    thread.start()
    answered = {}
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        query = oracle.current()
        images = session.images.loaded  # loaded here, from the cache the child wrote
        if query is None or images is None:
            time.sleep(0.01)
            continue
        label = int(images.train.labels[query.index])
        oracle.answer(query.index, label)
        answered[query.item] = label
    thread.join(timeout=5)
    assert not thread.is_alive()
    kinds = [type(e) for e in events]
    assert kinds[0] is not RunFinished and DataLoaded in kinds and QueryReady in kinds
    assert isinstance(events[-1], RunFinished)
    summary = result[0]
    assert summary is not None
    assert summary.labeled == summary.target and summary.human_agreement == 1
    human = journal(tmp_path / "run")  # every answer given here, in the journal it trained from
    assert human == answered and len(human) == summary.human_labels


def test_an_engine_error_comes_back_as_its_one_line(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(12):
        Image.new("RGB", (16, 16), (i * 20, 40, 90)).save(pool / f"{i}.png")
    config = tiny_config(pool, tmp_path / "c")
    session = open_session(config, tmp_path / "run", oracle="human")
    with pytest.raises(SalalError, match=r"pool has no class folders .*; name the classes"):
        EngineProcess(session, lambda e: None).run()


def test_a_killed_engine_is_reported_with_where_to_look(synthetic_pack: Path, tmp_path: Path):
    config = tiny_config(synthetic_pack, tmp_path / "c", **{"pretrain.epochs": 50})
    runner = EngineProcess(open_session(config, tmp_path / "run"), lambda e: None)

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
    seen = threading.Event()
    runner = EngineProcess(open_session(config, tmp_path / "run"), lambda e: seen.set())
    threading.Timer(0.1, lambda: seen.wait(60) and runner.stop()).start()
    started = time.monotonic()
    result = runner.run()
    assert result is None or result.stopped_early
    assert time.monotonic() - started < 60
    assert not runner.process.is_alive()
