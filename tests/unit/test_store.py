"""The run directory: journal replay, atomic and torn checkpoints, the lock, versions."""

import re
import sqlite3
from pathlib import Path

import pytest
import torch

from salal_core.errors import SalalError
from salal_core.events import OracleName, Query
from salal_core.run import checkpoint
from salal_core.run.oracle import SKIP, Answer
from salal_core.run.records import StoredItem
from salal_core.run.store import RunStore


def answer(i: int, label: int, oracle: OracleName = "human") -> Answer:
    return Answer(i, i, label, 1, oracle, 0.0)


def test_journal_replay_applies_reverts_and_ignores_skips(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.record_answers([answer(1, 3), answer(2, SKIP), answer(5, 0)])
    store.record_reverts([5])
    store.record_answers([answer(5, 2)])
    store.record_reverts([2])  # reverting a skip changes nothing
    labels = store.labels()
    assert {i: r.label for i, r in labels.items()} == {1: 3, 5: 2}
    store.close()
    reopened = RunStore(tmp_path / "run", create=False)
    assert {i: r.label for i, r in reopened.labels().items()} == {1: 3, 5: 2}
    reopened.close()


def test_a_second_process_on_the_same_run_is_refused(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    with pytest.raises(SalalError, match="in use by another salal process"):
        RunStore(tmp_path / "run", create=False)
    store.close()
    RunStore(tmp_path / "run", create=False).close()


def test_new_run_takes_over_a_directory_whose_run_saved_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)  # then it failed on its data, say
    store.save_items([StoredItem(0, "a.png", "d0"), StoredItem(1, "b.png", "d1")])
    store.save_classes(["cat", "dog"])
    store.close()
    store = RunStore(tmp_path / "run", create=True)
    assert store.items() == [] and store.class_names() == []
    store.record_answers([answer(1, 0)])
    store.close()
    with pytest.raises(SalalError, match="already holds a run; pass --resume"):
        RunStore(tmp_path / "run", create=True)
    kept = RunStore(tmp_path / "run", create=False)
    assert kept.labels()[1].label == 0  # untouched
    kept.close()

    pretrained = RunStore(tmp_path / "pretrained", create=True)  # no answer, but a model
    pretrained.save_checkpoint("pretrain", {"epochs": 1})
    pretrained.close()
    with pytest.raises(SalalError, match="already holds a run"):
        RunStore(tmp_path / "pretrained", create=True)


def test_torn_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.save_checkpoint("round-0000", {"round": 0, "w": torch.ones(3)})
    path = store.save_checkpoint("round-0001", {"round": 1, "w": torch.ones(3)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # as if the machine died mid-write
    found = checkpoint.load_newest(store.checkpoints, "round-")
    assert found is not None
    payload, used = found
    assert payload["round"] == 0 and used.name == "round-0000.pt"
    assert not list(store.checkpoints.glob("*.tmp"))
    store.close()


def test_incompatible_format_is_refused(tmp_path: Path) -> None:
    RunStore(tmp_path / "run", create=True).close()
    db = sqlite3.connect(tmp_path / "run" / "salal.db")
    db.execute("UPDATE meta SET value='99' WHERE key='format'")
    db.commit()
    db.close()
    with pytest.raises(SalalError, match="incompatible salal"):
        RunStore(tmp_path / "run", create=False)


def not_a_run(kind: str, folder: Path) -> Path:
    """A salal.db salal did not write whole: noise, an empty file, a run cut short, one with
    a page overwritten, another program's SQLite database."""
    folder.mkdir()
    db = folder / "salal.db"
    if kind == "noise":
        db.write_bytes(bytes(range(256)) * 20)
    elif kind == "empty":
        db.touch()
    elif kind in ("truncated", "damaged"):
        store = RunStore(folder.parent / "whole", create=True)
        store.record_answers([answer(i, 0) for i in range(2000)])
        store.close()
        whole = (folder.parent / "whole" / "salal.db").read_bytes()
        if kind == "truncated":
            db.write_bytes(whole[:6000])
        else:  # its third page overwritten
            db.write_bytes(whole[:8192] + bytes(range(256)) * 16 + whole[12288:])
    else:
        other = sqlite3.connect(db)
        other.execute("CREATE TABLE notes (text TEXT)")
        other.commit()
        other.close()
    return db


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("noise", "not an SQLite file"),
        ("empty", "an empty file"),
        ("truncated", "database disk image is malformed"),
        ("damaged", "damaged: Page 3: .*"),
        ("foreign", "an SQLite database without salal's format stamp"),
    ],
)
def test_a_database_salal_did_not_write_is_refused_and_left_as_it_is(
    kind: str, why: str, tmp_path: Path
) -> None:
    db = not_a_run(kind, tmp_path / "run")
    before = db.read_bytes()
    line = rf"^{re.escape(str(db))} is not a salal run database \({why}\); move it aside or "
    line += "pick another --out$"
    for opening in ({"create": False}, {"create": True}, {"create": False, "read_only": True}):
        with pytest.raises(SalalError, match=line):
            RunStore(tmp_path / "run", **opening)
    assert db.read_bytes() == before
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(SalalError, match="not a salal run directory"):
        RunStore(tmp_path, create=False)


def test_open_queries_come_back_in_the_order_they_were_asked(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)

    def ask(*items: int) -> None:
        store.questions.save([Query(i, i, 0.5, 0, (0.5, 0.5), 1) for i in items])

    ask(9, 2, 7)
    ask(4, 1)
    store.questions.mark_consumed([2])
    assert [q.item for q in store.questions.open()] == [9, 7, 4, 1]
    ask(9)  # skipped and asked again: now last
    assert [q.item for q in store.questions.open()] == [7, 4, 1, 9]
    store.close()


def test_a_broken_constraint_is_a_bug_not_a_full_disk(tmp_path: Path) -> None:
    """Only failures to write (full disk, I/O) become the one-line "free some disk space";
    a NaN score reaching the queue is a bug and keeps its traceback."""
    store = RunStore(tmp_path / "run", create=True)
    with pytest.raises(sqlite3.IntegrityError):
        store.questions.save([Query(1, 1, float("nan"), 0, (0.5, 0.5), 1)])
    store.record_answers([answer(1, 0)])  # rolled back: the store carries on
    assert store.questions.open() == [] and store.labels()[1].label == 0
    store.close()
