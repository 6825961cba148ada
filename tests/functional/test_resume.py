"""Resume trusts the run directory, not the command line: fixed flags are refused, labels
follow their images by content when a folder changes, a bad journal is refused before
anything trains, and an older run directory is refused in one line but still exports."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import ROOT, ROUNDS, downgrade_to_format_3, draw, tiny_cli, write_image_folder
from salal_core.cli.main import build_parser, main
from salal_core.data.identity import item_priority
from salal_core.run.plan import read_round
from salal_core.run.stability import StopSet
from salal_core.settings.resume import FIXED, MAY_CHANGE
from salal_core.settings.table import FLAGS, LABELS

EXTRA = (*ROUNDS, "--budget", "0.3")


def export(run: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["export", str(run)]) == 0
    return capsys.readouterr().out


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def one_line_error(code: int, capsys: pytest.CaptureFixture[str]) -> str:
    """The error line; progress lines (what was loaded) may stand above it."""
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    return errors[0].removeprefix("salal-core: error: ")


@pytest.fixture
def run(synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "run"
    assert main(tiny_cli("run", synthetic_pack, out, tmp_path / "c", "--seed", "1", *EXTRA)) == 0
    capsys.readouterr()
    return out


def test_fixed_flags_are_refused_and_the_export_stays_byte_for_byte(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = export(run, capsys)
    other = write_image_folder(tmp_path / "other", per_class_train=5, seed=9)
    cases = [
        (["--seed", "7"], "--seed was fixed when this run was created (1, not 7)"),
        (["--data", str(other)], "--data was fixed when this run was created"),
        (["--width", "8"], "--width was fixed"),
        (["--preset", "fast"], "--preset was fixed when this run was created ('tiny', not"),
        (["--initial-fraction", "0.1"], "--initial-fraction was fixed"),
        (["--train-limit", "20"], "--train-limit was fixed"),
        (["--classes", "a,b"], "--classes was fixed when this run was created"),
        (["--pretrained", str(tmp_path / "x.pt")], "--pretrained was fixed"),
    ]
    for args, message in cases:
        line = one_line_error(main(["run", "--resume", str(run), *args]), capsys)
        assert message in line and "start a new run with --out" in line, line
    assert export(run, capsys) == before
    # The values the run already has are accepted: the creating command can be run again.
    again = ["run", "--resume", str(run), "--seed", "1", "--preset", "tiny", "--width", "4"]
    assert main([*again, "--budget", "0.4", "--lr", "0.02", "--acquisition", "margin"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["labeled"] == 64 and summary["config"]["active"]["acquisition"] == "margin"
    kept = {r["index"]: (r["source"], r["label"]) for r in rows(export(run, capsys))}
    assert {r["index"]: (r["source"], r["label"]) for r in rows(before)}.items() <= kept.items()


def config_flags() -> set[str]:
    """Every option of `salal-core run` that sets part of the run's configuration."""
    run = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
        if isinstance(a, argparse.ArgumentParser) and a.prog.endswith(" run")
    )
    # How to run, not what (the table's "launch" rows, like torchrun's own flags).
    launch = {flag.name for flag in FLAGS if flag.resume == "launch"}
    assert launch == {"--group-timeout"}
    not_config = {"--out", "--resume", "--json", "--help", *launch}
    return {
        opt
        for action in run._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt not in not_config
    }


def test_every_flag_is_in_exactly_one_resume_list_and_the_readme_prints_both() -> None:
    flags = config_flags()
    # The parser is built from the table: each of its flags is a row, and each row a flag.
    assert flags == {flag.name for flag in (*FLAGS, LABELS) if flag.resume != "launch"}
    assert flags == set(MAY_CHANGE) | set(FIXED)
    assert not set(MAY_CHANGE) & set(FIXED)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Resuming") :]
    may = next(line for line in section.splitlines() if line.startswith("- **May change:**"))
    fixed = next(
        line for line in section.splitlines() if line.startswith("- **Fixed at creation:**")
    )
    assert set(re.findall(r"`(--[a-z-]+)`", may)) == set(MAY_CHANGE)
    assert set(re.findall(r"`(--[a-z-]+)`", fixed)) == set(FIXED)


# ---------------------------------------------------------------------------- identity


def add_images(folder: Path, count: int, seed: int) -> list[Path]:
    """New files whose names sort between the old ones, so every later position shifts."""
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in (folder / "train").iterdir())
    added = []
    for i in range(count):
        label = i % len(classes)
        path = folder / "train" / classes[label] / f"{i:04d}-new.png"
        Image.fromarray(draw(label, rng)).save(path)
        added.append(path)
    return added


def test_a_folder_that_gains_images_keeps_every_label_on_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_image_folder(tmp_path / "photos", per_class_train=75, per_class_test=0)
    out, cache = tmp_path / "run", tmp_path / "c"
    assert main(tiny_cli("run", folder, out, cache, *EXTRA)) == 0
    before = rows(export(out, capsys))
    assert len(before) == 90 and all(Path(r["source"]).parent.name == r["class"] for r in before)

    add_images(folder, 50, seed=3)
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    assert "50 new images joined the pool" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_size"] == 350 and summary["labeled"] == 140
    after = {r["index"]: r for r in rows(export(out, capsys))}
    for row in before:  # same item, same file, same class
        assert after[row["index"]]["source"] == row["source"]
        assert after[row["index"]]["class"] == row["class"]
    assert all(Path(r["source"]).parent.name == r["class"] for r in after.values())


def test_renamed_and_removed_files_keep_their_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_image_folder(tmp_path / "photos", per_class_train=25, per_class_test=5)
    out = tmp_path / "run"
    assert main(tiny_cli("run", folder, out, tmp_path / "c", *EXTRA)) == 0
    before = rows(export(out, capsys))
    moved, gone = Path(before[0]["source"]), Path(before[1]["source"])
    renamed = moved.with_name("renamed-" + moved.name)
    moved.rename(renamed)
    gone.unlink()
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    err = capsys.readouterr().err
    assert "1 of this run's images are no longer in the source (1 labeled)" in err
    after = {r["index"]: r for r in rows(export(out, capsys))}
    assert after[before[0]["index"]]["source"] == str(renamed)  # same label, its new name
    assert after[before[0]["index"]]["class"] == before[0]["class"]
    assert after[before[1]["index"]]["source"] == str(gone)  # gone, still in the export
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_size"] == 99


def test_a_source_that_shares_no_image_with_the_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_image_folder(tmp_path / "photos", per_class_train=10, per_class_test=2)
    out = tmp_path / "run"
    assert main(tiny_cli("run", folder, out, tmp_path / "c", *EXTRA)) == 0
    before = export(out, capsys)
    for path in (folder / "train").rglob("*.png"):  # same folder, other pictures
        path.unlink()
    write_image_folder(folder, per_class_train=10, per_class_test=2, seed=5)
    line = one_line_error(main(["run", "--resume", str(out)]), capsys)
    assert "none of these images belong to this run" in line
    assert export(out, capsys) == before


def test_a_limited_slice_is_kept_not_drawn_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_image_folder(tmp_path / "photos", per_class_train=30, per_class_test=5)
    out = tmp_path / "run"
    command = tiny_cli("run", folder, out, tmp_path / "c", *EXTRA)
    command[command.index("--train-limit") + 1] = "60"
    assert main(command) == 0
    before = {r["index"]: r["source"] for r in rows(export(out, capsys))}
    add_images(folder, 40, seed=4)  # would move a balanced slice drawn again
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    err = capsys.readouterr().err
    assert "100 images of the source left out: this run's slice holds at most 60" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_size"] == 60 and summary["labeled"] == 24
    after = {r["index"]: r["source"] for r in rows(export(out, capsys))}
    assert before.items() <= after.items()
    assert not any("-new" in s for s in after.values())


def test_priority_and_held_out_share_come_from_identity_not_position() -> None:
    digests = [f"d{i}" for i in range(50)]
    grown = ["x1", *digests[:20], "x2", *digests[20:]]
    a, b = item_priority(digests, 0), item_priority(grown, 0)
    assert (
        dict(zip(digests, a.tolist(), strict=True)).items()
        <= dict(zip(grown, b.tolist(), strict=True)).items()
    )
    assert not np.array_equal(item_priority(digests, 1), a)  # and seeded


# ---------------------------------------------------------------------------- the journal


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE journal SET label=99 WHERE seq=5", "journal record 5 gives class 99"),
        ("UPDATE journal SET idx=-7 WHERE seq=3", "journal record 3 names item -7"),
        ("UPDATE journal SET oracle='robot' WHERE seq=2", "record 2 comes from an unknown oracle"),
        ("UPDATE journal SET round=40 WHERE seq=4", "record 4 is dated round 40, after the last"),
        # SQLite keeps any type in any column: these were trained on, or a traceback, before.
        ("UPDATE journal SET label=1.5 WHERE seq=5", "journal record 5 gives class 1.5"),
        ("UPDATE journal SET label='x' WHERE seq=5", "journal record 5 gives class 'x'"),
        ("UPDATE journal SET round=-3 WHERE seq=4", "record 4 is dated round -3, before the"),
        ("UPDATE journal SET round=0.5 WHERE seq=4", "record 4 is dated round 0.5, which is not"),
        ("UPDATE journal SET time='x' WHERE seq=3", "record 3 was given at 'x', which is not a"),
    ],
)
def test_a_bad_journal_record_is_refused_before_anything_trains(
    run: Path, sql: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = sqlite3.connect(run / "salal.db")
    db.execute(sql)
    db.commit()
    db.close()
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    line = one_line_error(main(["run", "--resume", str(run), "--budget", "0.4"]), capsys)
    assert message in line and "export the labels" in line, line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == checkpoints


# ---------------------------------------------------------------------------- formats


def test_an_older_run_directory_is_refused_but_still_exports(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = export(run, capsys)
    db = sqlite3.connect(run / "salal.db")  # as format 2 wrote it: items without digests
    db.executescript(
        "UPDATE meta SET value='2' WHERE key='format';"
        "CREATE TABLE old AS SELECT idx, source_id FROM items; DROP TABLE items;"
        "ALTER TABLE old RENAME TO items;"
    )
    db.commit()
    db.close()
    line = one_line_error(main(["run", "--resume", str(run)]), capsys)
    assert "written by an older salal (format 2)" in line and "salal-core export" in line
    assert export(run, capsys) == before


def test_a_format_3_run_resumes_with_every_label_kept(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = rows(export(run, capsys))
    downgrade_to_format_3(run / "salal.db")
    assert main(["run", "--resume", str(run), "--budget", "0.4"]) == 0
    after = {row["index"]: row for row in rows(export(run, capsys))}
    assert all(after[row["index"]] == row for row in before)  # the ground truth's: no person
    assert len(after) > len(before)


def test_a_checkpoint_of_another_version_is_refused_in_one_line(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    newest = sorted((run / "checkpoints").glob("round-*.pt"))[-1]
    payload = torch.load(newest, weights_only=True)
    payload["version"] = 0
    torch.save(payload, newest)
    line = one_line_error(main(["run", "--resume", str(run), "--budget", "0.4"]), capsys)
    assert f"{newest.name} is a checkpoint of another salal version" in line


def newest_stop_set(run: Path) -> StopSet:
    stop_set = read_round(sorted((run / "checkpoints").glob("round-*.pt"))[-1]).stop_set
    assert stop_set is not None
    return stop_set


def test_resuming_on_a_grown_folder_keeps_the_stop_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_image_folder(tmp_path / "photos", per_class_train=75, per_class_test=0)
    out, cache = tmp_path / "run", tmp_path / "c"
    assert main(tiny_cli("run", folder, out, cache, *EXTRA)) == 0
    before = newest_stop_set(out)
    assert len(before.items) == 300 - 60 and -1 not in before.predictions
    add_images(folder, 50, seed=3)
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    assert newest_stop_set(out).items == before.items
    assert "kappa" in capsys.readouterr().err  # each round says it


def test_a_checkpoint_saved_before_stop_sets_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_image_folder(tmp_path / "photos", per_class_train=75, per_class_test=0)
    out, cache = tmp_path / "run", tmp_path / "c"
    assert main(tiny_cli("run", folder, out, cache, *EXTRA)) == 0
    newest = sorted((out / "checkpoints").glob("round-*.pt"))[-1]
    payload = torch.load(newest, weights_only=True)
    payload["version"] = 1
    del payload["stop_items"], payload["stop_predictions"]
    for point in payload["curve"]:
        del point["kappa"]
    torch.save(payload, newest)
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    assert len(newest_stop_set(out).items) > 0


@pytest.mark.parametrize(("limit", "joined"), [(1000, 50), (150, 30)])
def test_a_folder_that_grows_under_its_slice_takes_new_images_up_to_the_limit(
    limit: int, joined: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A slice at least as large as the folder is all of it, so new images join; a folder that
    outgrows its slice keeps every image it had and adds new ones up to the limit, chosen by
    digest priority, and one line says how many were left out."""
    folder = write_image_folder(tmp_path / "photos", per_class_train=30, per_class_test=5)
    out = tmp_path / "run"
    command = tiny_cli("run", folder, out, tmp_path / "c", *EXTRA)
    command[command.index("--train-limit") + 1] = str(limit)
    assert main(command) == 0
    before = {r["index"]: r["source"] for r in rows(export(out, capsys))}
    add_images(folder, 50, seed=5)
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    err = capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["train_size"] == 120 + joined
    assert (f"{50 - joined} images of the source left out" in err) == (joined < 50)
    after = {r["index"]: r["source"] for r in rows(export(out, capsys))}
    assert before.items() <= after.items()
