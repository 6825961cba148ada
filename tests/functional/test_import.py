"""Labels a person already has: into an existing run (a CSV, or a tree of renamed copies),
matched by content; refused whole on any bad row; and seeding a new run with --labels."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from helpers import (
    CLASSES,
    ROUNDS,
    SIZE,
    class_from_name,
    journal,
    labels_by_item,
    tiny_cli,
    tiny_config,
    wait_for,
    write_image_folder,
    write_unlabeled_folder,
)
from salal_core.cli.main import main
from salal_core.run.factory import open_session
from salal_tui.launch import label_alone


def exported(run: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert main(["export", str(run), *extra]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    folder = write_image_folder(tmp_path / "photos", per_class_train=10, per_class_test=3)
    out = tmp_path / "run"
    assert main(tiny_cli("run", folder, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")) == 0
    capsys.readouterr()
    return folder, out


def test_a_csv_and_a_tree_of_renamed_copies_come_in_by_content(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = run
    before = {r["source"]: r for r in exported(out, capsys)}
    relabel = sorted(before)[:2]  # two labeled images, said to be yellow now
    fresh = sorted(
        str(p) for p in (folder / "train" / "red").glob("*.png") if str(p) not in before
    )[:2]
    sheet = tmp_path / "mine" / "labels.csv"
    sheet.parent.mkdir()
    rows = [(Path(p).relative_to(folder), "yellow") for p in relabel]  # relative to the CSV
    (sheet.parent / "train").symlink_to(folder / "train", target_is_directory=True)
    sheet.write_text("path,class\n" + "".join(f"{p},{c}\n" for p, c in rows))
    tree = tmp_path / "tree"
    for i, path in enumerate(fresh):  # renamed copies in a class folder: matched by content
        (tree / "red").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tree / "red" / f"holiday-{i}.png")
    assert main(["import-labels", str(out), str(sheet)]) == 0
    assert "2 labels imported" in capsys.readouterr().err
    assert main(["import-labels", str(out), str(tree)]) == 0
    after = {r["source"]: r for r in exported(out, capsys)}
    assert all(after[p]["class"] == "yellow" and after[p]["oracle"] == "imported" for p in relabel)
    assert all(after[p]["class"] == "red" and after[p]["oracle"] == "imported" for p in fresh)
    assert len(after) == len(before) + 2
    history = [r for r in exported(out, capsys, "--history") if r["source"] == relabel[0]]
    assert [(r["oracle"], r["current"]) for r in history][-1] == ("imported", "True")
    assert len(history) == 2


def test_a_bad_row_refuses_the_whole_file(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = run
    before = labels_by_item(out)
    good = next((folder / "train" / "red").glob("*.png"))
    stranger = tmp_path / "stranger.png"
    write_image_folder(tmp_path / "other", per_class_train=1, per_class_test=0, seed=42)
    shutil.copy(next((tmp_path / "other").rglob("*.png")), stranger)
    cases = [
        (f"{good},red\n{tmp_path / 'nope.png'},red\n", "line 2: ", "does not exist"),
        (f"{good},crimson\n", "line 1: class 'crimson' is not one of this run's", "blue"),
        (f"{good},red\n{stranger},red\n", "line 2: ", "is not one of this run's images"),
        (f"{good}\n", "line 1: expected path,class", ""),
        (f"{good},red\n{'x' * 140_000},red\n", "line 2: field larger than field limit", ""),
    ]
    for text, where, what in cases:
        sheet = tmp_path / "labels.csv"
        sheet.write_text(text)
        assert main(["import-labels", str(out), str(sheet)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and where in err and what in err, err
    assert labels_by_item(out) == before  # nothing half-imported
    assert main(["run", "--resume", str(out), "--labels", str(sheet)]) == 2
    assert "salal-core import-labels" in capsys.readouterr().err


async def test_labels_seed_a_new_run_in_the_app(tmp_path: Path) -> None:
    pool = write_unlabeled_folder(tmp_path / "photos", per_class=10)  # 40 images, no classes
    files = sorted(p for p in pool.rglob("*") if p.stem[:4].isdigit())[:8]
    sheet = tmp_path / "mine.csv"
    sheet.write_text("".join(f"{p},{CLASSES[class_from_name(p.name)]}\n" for p in files))
    config = tiny_config(pool, tmp_path / "c", **{"active.query_size": 6, "active.budget": 0.5})
    session = open_session(
        config, tmp_path / "run", oracle="human", class_names=CLASSES, labels_file=sheet
    )
    app = label_alone(session, "tester")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        await wait_for(pilot, lambda: screen.shown is not None)
        asked = {q.item for q in app.desk.oracle.queued()} if app.desk.oracle else set()
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    imported = labels_by_item(tmp_path / "run", "imported")
    assert len(imported) == 8 and not asked & set(imported)  # never asked again
    assert journal(tmp_path / "run") == {}  # nothing typed by the person
