"""A round checkpoint holds what resume reads: a run stopped right after one asks the same
next images as a run that never stopped; a switch between one head and a committee rebuilds
the head on the saved backbone; and files resume reads are written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import run_engine, tiny_config
from salal_core.events import Event, Notice, QueryReady, RoundEnded
from salal_core.files import atomic_write, atomic_write_text
from salal_core.run.checkpoint import RoundCheckpoint
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session


def next_queries(events: list[Event], round_: int) -> list[int]:
    return [
        q.item for e in events if isinstance(e, QueryReady) and e.round == round_ for q in e.queries
    ]


@pytest.mark.parametrize(
    ("acquisition", "head_input", "finetune_from", "cross_validate_from"),
    [
        ("entropy", "last", 0, 0),
        ("random", "last", 0, 0),
        ("qbc", "last", 0, 0),
        ("badge", "all-stages", 1000, 0),  # the cpu recipe's head, fit on frozen features
        ("badge", "all-stages", 1000, 2),  # each round cross-validates the switch
    ],
)
def test_a_run_stopped_after_a_checkpoint_asks_what_an_unstopped_run_asks(
    acquisition: str,
    head_input: str,
    finetune_from: int,
    cross_validate_from: int,
    synthetic_pack: Path,
    tmp_path: Path,
) -> None:
    config = tiny_config(
        synthetic_pack,
        tmp_path / "c",
        **{
            "active.acquisition": acquisition,
            "active.budget": 0.4,
            "pretrain.epochs": 0,
            "model.head_input": head_input,
            "active.finetune_from": finetune_from,
            "active.cross_validate_from": cross_validate_from,
        },
    )
    _, whole = run_engine(config, tmp_path / "whole")

    events: list[Event] = []
    engines: list[Engine] = []

    def stop_after_round_1(event: Event) -> None:
        events.append(event)
        if isinstance(event, RoundEnded) and event.round == 1:
            engines[0].stop()  # RoundEnded comes after its checkpoint is on disk

    engines.append(
        Engine.for_session(open_session(config, tmp_path / "stopped"), stop_after_round_1)
    )
    summary = engines[0].run()
    assert summary.stopped_early and not next_queries(events, 2)
    assert (tmp_path / "stopped" / "checkpoints" / "round-0001.pt").exists()

    resumed_events: list[Event] = []
    resumed = Engine.for_session(
        open_session(None, tmp_path / "stopped", resume=True), resumed_events.append
    )
    final = resumed.run()
    assert next_queries(resumed_events, 2) == next_queries(whole.events, 2) != []
    assert [p.labeled for p in final.curve] == [32, 48, 64]
    saved = torch.load(tmp_path / "stopped" / "checkpoints" / "round-0001.pt", weights_only=True)
    assert RoundCheckpoint.from_payload(saved, "new").shape.head_input == head_input
    del saved["shape"]["head_input"]  # as version 2 wrote it: every head read the last stage
    assert RoundCheckpoint.from_payload({**saved, "version": 2}, "old").shape.head_input == "last"


def test_switching_between_one_head_and_a_committee_rebuilds_the_head(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = tiny_config(synthetic_pack, tmp_path / "c", **{"active.budget": 0.3})
    run_engine(config, out)
    for acquisition, budget, heads in (("qbc", 0.4, 3), ("entropy", 0.5, 1)):
        events: list[Event] = []
        session = open_session(
            None,
            out,
            resume=True,
            overrides={"active.acquisition": acquisition, "active.budget": budget},
        )
        summary = Engine.for_session(session, events.append).run()
        notices = [e.message for e in events if isinstance(e, Notice)]
        assert any("the head is rebuilt on the checkpoint's backbone" in n for n in notices)
        assert summary.labeled == round(budget * 160) and summary.stop_reason == "budget"
        newest = sorted((out / "checkpoints").glob("round-*.pt"))[-1]
        assert torch.load(newest, weights_only=True)["shape"]["members"] == heads


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    atomic_write_text(path, "old")

    def torn(f) -> None:
        f.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, torn)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary left behind
    atomic_write_text(path, "new")
    assert path.read_text() == "new"


def test_a_generator_from_another_kind_of_device_restarts_the_stream(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    """--device may change on resume; a CUDA generator's state cannot load into a CPU one."""
    out = tmp_path / "run"
    run_engine(tiny_config(synthetic_pack, tmp_path / "c", **{"active.budget": 0.3}), out)
    newest = sorted((out / "checkpoints").glob("round-*.pt"))[-1]
    payload = torch.load(newest, weights_only=True)
    payload["generator"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA state
    torch.save(payload, newest)
    events: list[Event] = []
    session = open_session(None, out, resume=True, overrides={"active.budget": 0.4})
    summary = Engine.for_session(session, events.append).run()
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert "this run moved to another kind of device: its random stream restarts" in notices
    assert summary.labeled == 64 and summary.stop_reason == "budget"


def test_a_database_that_lost_its_newest_records_says_how_many_labels_went(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    """As a run copied after a kill without its salal.db-wal: the database is as it was a
    round ago, while the newest checkpoint trained on more labels. Resume says how many are
    gone and asks those images again."""
    out = tmp_path / "run"
    run_engine(tiny_config(synthetic_pack, tmp_path / "c", **{"active.budget": 0.3}), out)
    older = (out / "salal.db").read_bytes()  # 48 labels; closed, so nothing is in a -wal

    def resume(budget: float) -> tuple[int, list[str]]:
        events: list[Event] = []
        session = open_session(None, out, resume=True, overrides={"active.budget": budget})
        summary = Engine.for_session(session, events.append).run()
        return summary.labeled, [e.message for e in events if isinstance(e, Notice)]

    labeled, notices = resume(0.4)  # round 2 trains on 64
    assert labeled == 64 and not [n for n in notices if "missing" in n]
    (out / "salal.db").write_bytes(older)
    labeled, notices = resume(0.4)
    assert labeled == 64  # the 16 images are asked again
    assert [n for n in notices if "missing" in n] == [
        "16 of the 64 labels that round-0002 trained on are missing from the run's database "
        "(only 48 are there; was salal.db-wal deleted, or left behind when the run was "
        "copied?): those images go back to the pool and are asked again"
    ]
