"""What a person takes away at the end: the labels as an image folder (links, copies, or PNGs
for sources that are not files), every label ever given, and a model that predicts on new
images without the run directory."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
import torch

from helpers import ROUNDS, run_cli, tiny_cli, write_image_folder
from salal_core.cli.commands.model_file import ModelFile
from salal_core.cli.main import main
from salal_core.learn.model import Net

EXTRA = (*ROUNDS, "--budget", "0.3", "--head-input", "all-stages")


@pytest.fixture
def labeled_folder_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    folder = write_image_folder(tmp_path / "photos", per_class_train=20, per_class_test=5)
    out = tmp_path / "run"
    assert main(tiny_cli("run", folder, out, tmp_path / "c", *EXTRA)) == 0
    capsys.readouterr()
    return folder, out


def one_error(code: int, capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_an_image_folder_of_links_or_copies(
    labeled_folder_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, run = labeled_folder_run
    linked = tmp_path / "linked"
    assert main(["export", str(run), "--format", "imagefolder", "-o", str(linked)]) == 0
    files = sorted(linked.glob("*/*"))
    assert len(files) == 24  # 30% of 80
    for f in files:  # each a link to the labeled file, in its class's folder
        assert f.is_symlink() and f.resolve().parent.name == f.parent.name
        assert f.resolve().is_relative_to(folder.resolve())
    copied = tmp_path / "copied"
    assert main(["export", str(run), "--format", "imagefolder", "-o", str(copied), "--copy"]) == 0
    assert all(not f.is_symlink() and f.is_file() for f in copied.glob("*/*"))
    assert len(list(copied.glob("*/*"))) == 24
    capsys.readouterr()
    line = one_error(
        main(["export", str(run), "--format", "imagefolder", "-o", str(copied)]), capsys
    )
    assert "exists and is not empty" in line


def test_an_archive_source_exports_png_files(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(tiny_cli("run", synthetic_pack, run, tmp_path / "c", *EXTRA)) == 0
    out = tmp_path / "folder"
    assert main(["export", str(run), "--format", "imagefolder", "-o", str(out)]) == 0
    files = sorted(out.glob("*/*.png"))
    assert len(files) == 48 and {f.parent.name for f in files} == {"blue", "green", "red", "yellow"}


def test_history_keeps_every_label_and_says_which_stands(
    labeled_folder_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = labeled_folder_run
    db = sqlite3.connect(run / "salal.db")  # a correction, as review mode writes one
    item = db.execute("SELECT idx FROM journal ORDER BY seq LIMIT 1").fetchone()[0]
    db.execute(
        "INSERT INTO journal (kind, idx, label, round, oracle, time) "
        "VALUES ('label', ?, 3, 0, 'human', 4e9)",
        (item,),
    )
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["export", str(run)]) == 0
    latest = {r["index"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert latest[str(item)]["label"] == "3" and len(latest) == 24
    assert main(["export", str(run), "--history"]) == 0
    rows = [
        r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["index"] == str(item)
    ]
    assert [r["current"] for r in rows] == ["False", "True"] and rows[-1]["label"] == "3"


def test_a_model_goes_out_and_predicts_on_new_images(
    labeled_folder_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = labeled_folder_run
    model = tmp_path / "model.pt"
    assert main(["export-model", str(run), "-o", str(model)]) == 0
    payload = torch.load(model, weights_only=True)
    assert payload["classes"] == ["blue", "green", "red", "yellow"] and payload["image_size"] == 32
    assert payload["head_input"] == "all-stages"
    new = write_image_folder(tmp_path / "new", per_class_train=3, per_class_test=0, seed=7)
    capsys.readouterr()
    assert main(["predict", "--model", str(model), str(new), "--top", "3", "--device", "cpu"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 12
    assert list(rows[0]) == [
        "source",
        "class",
        "confidence",
        "class_1",
        "p_1",
        "class_2",
        "p_2",
        "class_3",
        "p_3",
    ]
    for row in rows:
        assert Path(row["source"]).is_file() and row["class"] == row["class_1"]
        assert float(row["p_1"]) >= float(row["p_2"]) >= float(row["p_3"])
    assert main(["predict", str(run), "--device", "cpu"]) == 0  # a run: to stdout as well
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 80 - 24
    not_a_model = tmp_path / "round.pt"
    torch.save({"kind": "round"}, not_a_model)
    damaged = tmp_path / "damaged.pt"
    torch.save({**payload, "head_input": "every other stage"}, damaged)
    for path in (not_a_model, damaged, run / "config.toml", tmp_path / "missing.pt"):
        line = one_error(main(["predict", "--model", str(path), str(new)]), capsys)
        assert "salal model" in line or "does not exist" in line


def test_a_version_1_model_file_reads_as_a_head_on_the_last_stage(tmp_path: Path) -> None:
    """Model files written before the head's input was saved: every head then read the last
    stage, so that is what they load as."""
    net = Net(width=4, classes=3)
    old = tmp_path / "old.pt"
    payload = {
        "kind": "salal-model",
        "version": 1,
        "model": net.state_dict(),
        "width": 4,
        "members": 1,
        "classes": ["a", "b", "c"],
        "image_size": 32,
        "mean": torch.zeros(3),
        "std": torch.ones(3),
    }
    torch.save(payload, old)
    model = ModelFile.read(old)
    assert model.head_input == "last"
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model.network(torch.device("cpu"))(x), net.eval()(x))


def test_a_foreign_pickle_is_one_line_without_torchs_warnings(tmp_path: Path) -> None:
    """A pickle that is not salal's, passed as --model or --pretrained: the one line alone,
    not after torch's warnings about the pickle protocol."""
    import pickle

    foreign = tmp_path / "other.pt"
    foreign.write_bytes(pickle.dumps({"kind": "model", "weights": [1, 2]}, protocol=5))
    result = run_cli("predict", "--model", str(foreign), str(tmp_path), "--out", "-")
    assert result.returncode == 2
    assert (
        result.stderr.startswith("salal-core: error: ") and "is not a salal model" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    folder = write_image_folder(tmp_path / "photos")
    command = tiny_cli("run", folder, tmp_path / "r", tmp_path / "c", "--pretrained", str(foreign))
    result = run_cli(*command)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Warning" not in result.stderr, result.stderr
    assert last.startswith("salal-core: error: ") and "is not a readable checkpoint" in last
