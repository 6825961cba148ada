"""The command line end to end: pretrain, run, resume, export, predict, compare, bad input."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest

from helpers import ROUNDS, add_entries_that_are_no_files, run_cli, tiny_cli, write_image_folder
from salal_core import json_text
from salal_core.cli.flags import overrides_from_args
from salal_core.cli.main import build_parser, main
from salal_core.run.store import RunStore
from salal_core.run.summary import RunSummary


def test_pretrain_tiny_on_the_shared_pack_slice(
    shared_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        tiny_cli(
            "pretrain",
            shared_slice,
            tmp_path / "pre",
            tmp_path / "c",
            "--json",
            "--pretrain-epochs",
            "2",
        )
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs"] == 2 and 0 <= result["rotation_accuracy"] <= 1
    assert Path(result["checkpoint"]).exists()
    assert (tmp_path / "pre" / "config.toml").read_text().startswith('preset = "tiny"')


def test_run_writes_a_run_directory_with_a_point_per_round(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    code = main(tiny_cli("run", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.4"))
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [p["labeled"] for p in summary["curve"]] == [32, 48, 64]
    assert {"config.toml", "salal.db", "summary.json", "checkpoints"} <= {
        p.name for p in out.iterdir()
    }
    assert {p.name for p in (out / "checkpoints").iterdir()} == {
        "pretrain.pt",
        "round-0000.pt",
        "round-0001.pt",
        "round-0002.pt",
    }
    assert "64 labeled (40%) in 3 rounds" in capsys.readouterr().out
    store = RunStore(out, create=False, lock=False)
    epochs = store.metrics("finetune")
    store.close()
    assert [(m.round, m.epoch) for m in epochs] == [(0, 1), (1, 1), (2, 1)]
    assert all(m.test_accuracy is not None and 0 <= m.test_accuracy <= 1 for m in epochs)
    assert all(m.images_per_second is not None and m.images_per_second > 0 for m in epochs)

    # Resume with a larger budget carries on from the last round instead of starting over.
    assert main(["run", "--resume", str(out), "--budget", "0.5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [p["round"] for p in summary["curve"]] == [0, 1, 2, 3]
    assert summary["labeled"] == 80

    assert main(["export", str(out), "--format", "json", "-o", str(tmp_path / "l.json")]) == 0
    rows = json.loads((tmp_path / "l.json").read_text())
    assert len(rows) == 80 == len({r["index"] for r in rows})
    assert {r["oracle"] for r in rows} == {"initial", "auto"}
    assert all(r["source"].endswith(".png") and r["class"] for r in rows)
    capsys.readouterr()
    assert main(["export", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "index,source,label,class,oracle,labeler,round,time" and len(lines) == 81

    assert main(["predict", str(out), "--out", str(tmp_path / "p.csv"), "--device", "cpu"]) == 0
    with (tmp_path / "p.csv").open() as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == 160 - 80
    assert not {int(p["index"]) for p in preds} & {r["index"] for r in rows}
    assert all(0 <= float(p["confidence"]) <= 1 for p in preds)

    capsys.readouterr()
    for command in (
        ["export", str(out), "-o", "/no/such/x.csv"],
        ["predict", str(out), "--out", "/no/such/x.csv", "--device", "cpu"],
    ):
        assert main(command) == 2
        assert capsys.readouterr().err == (
            "salal-core: error: cannot write /no/such/x.csv (No such file or directory); "
            "pass another path\n"
        )


def test_compare_prints_a_table_and_writes_csv(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cmp"
    code = main(
        tiny_cli(
            "compare",
            synthetic_pack,
            out,
            tmp_path / "c",
            *ROUNDS,
            "--budget",
            "0.3",
            "--strategies",
            "entropy,random",
            "--seeds",
            "2",
        )
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "entropy" in table and "random" in table and "20%" in table and "±" in table
    with (out / "compare.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["strategy"], r["fraction"], r["runs"]) for r in rows} == {
        (s, f, "2") for s in ("entropy", "random") for f in ("0.2", "0.3")
    }
    assert (out / "compare.png").stat().st_size > 1000
    assert (out / "entropy-seed1" / "summary.json").exists()


def strict_json(text: str) -> object:
    """JSON as strict readers take it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_figures_that_are_not_numbers_are_written_as_null() -> None:
    text = json_text.dumps({"accuracy": math.nan, "curve": [math.inf, 0.5], "k": (-math.inf,)})
    assert strict_json(text) == {"accuracy": None, "curve": [None, 0.5], "k": [None]}
    assert math.isnan(json_text.number(None)) and json_text.number(0.25) == 0.25


def test_summary_json_and_every_json_output_are_strict_json(
    synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    """The first round has no kappa (NaN) and nobody labeled (agreement NaN): null, in
    summary.json, `run --json`, `agreement --json` and `export --format json`; read back as
    NaN."""
    out = tmp_path / "run"
    args = tiny_cli("run", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    assert main([*args, "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)
    assert isinstance(printed, dict) and printed["curve"][0]["kappa"] is None
    written = strict_json((out / "summary.json").read_text())
    assert isinstance(written, dict) and written["agreement"]["observed"] is None
    assert math.isnan(RunSummary.from_json(written).curve[0].kappa)
    assert math.isnan(RunSummary.from_json(written).agreement.fleiss)
    for command in (["agreement", str(out), "--json"], ["export", str(out), "--format", "json"]):
        assert main(command) == 0
        strict_json(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/nonexistent/cifar"], "does not exist"),
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--acquisition", "entrpy"], "unknown acquisition 'entrpy'"),
        (["--budget", "0.1"], "must be above --initial-fraction"),
        (["--query-size", "0"], "--query-size must be above 0"),
        (["--eval-batch-size", "0"], "--eval-batch-size must be at least 1"),
        (["--image-size", "4"], "--image-size must be from 8 to 512 (the pool is held decoded"),
        (["--image-size", "100000"], "--image-size must be from 8 to 512 (the pool is held"),
        (["--seed", str(2**64)], "--seed must be from 0 to 9,223,372,036,854,775,807 (a 64-"),
        (["--pretrain-steps", "1e20"], "--pretrain-steps must be from 0 to 100,000 (ten times"),
        (["--round-steps", "100001"], "--round-steps must be from 0 to 100,000 (ten times the"),
        (["--group-timeout", "-1"], "--group-timeout must be from 1 to 86400 (seconds: up to a"),
        (["--group-timeout", "nan"], "--group-timeout must be from 1 to 86400 (seconds: up to"),
        (["--lr", "-1"], "--lr must be a positive number, not -1.0"),
        (["--lr", "nan"], "--lr must be a positive number, not nan"),
        (["--seed", "-1"], "--seed must be from 0 to 9,223,372,036,854,775,807 (a 64-bit"),
        (["--train-limit", "-5"], "--train-limit and --test-limit must be 0 (everything)"),
        (["--pretrain-epochs", "-1"], "--pretrain-epochs must be 0 (no pretraining) or more"),
        (["--cross-validate-below", "-1"], "--cross-validate-below must be 0 (any folder)"),
        (["--compile", "fast"], "unknown --compile mode 'fast'; choose one of: off,"),
        (["--head-input", "first"], "unknown --head-input 'first'; choose one of: last, all-"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--backbone", "alexnet"], "unknown --backbone 'alexnet'; choose one of: auto, rotnet,"),
        (
            ["--backbone", "resnet18", "--backbone-weights", "/no/such.pth"],
            "/no/such.pth does not exist; pass --backbone-weights a resnet18 weights file",
        ),
        (["--backbone-weights", "/no/such.pth"], "name the network with --backbone"),
        (["--resume", "/nonexistent/run"], "not a salal run directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, synthetic_pack: Path, capsys
) -> None:
    """In-process, for speed: a traceback would escape `main` and fail the test. The real
    process's exit status and stderr are checked by the tests that use `run_cli`."""
    if "--resume" in args:
        full = ["run", *args]
    else:
        full = ["run", "--data", str(synthetic_pack), "--out", str(tmp_path / "r"), *args]
        if "--data" in args[:1]:
            full = ["run", *args, "--out", str(tmp_path / "r")]
    code = main(full)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.splitlines()  # not stripped: no blank line from the bars either
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out


def test_numbers_are_bounded_in_the_flag_table_for_the_app_too(capsys) -> None:
    """A whole number may be written 2e3; the app refuses what salal-core run refuses."""
    from salal_tui.__main__ import main as salal_tui

    args = build_parser().parse_args(["run", "--pretrain-steps", "2e3", "--seed", "7"])
    assert overrides_from_args(args) == {"pretrain.optim.min_steps": 2000, "seed": 7}
    assert salal_tui(["--seed", str(2**64), "--images", "blocks"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "salal-tui: error: --seed must be from 0 to 9,223,372,036,854,775,807 (a 64-bit "
        "integer, as config.toml holds it), not 18446744073709551616"
    ]


def test_a_run_directory_whose_database_is_not_a_run_is_one_line_everywhere(
    synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    """run (new or resumed), export and the app: one line, exit 2, the file left alone."""
    from salal_tui.__main__ import main as salal_tui

    run = tmp_path / "run"
    run.mkdir()
    (run / "salal.db").write_bytes(b"not a database at all\n" * 100)
    before = (run / "salal.db").read_bytes()
    commands = [
        (main, ["run", "--data", str(synthetic_pack), "--out", str(run)], "salal-core"),
        (main, ["run", "--resume", str(run)], "salal-core"),
        (main, ["export", str(run)], "salal-core"),
        (salal_tui, ["--resume", str(run), "--images", "blocks"], "salal-tui"),
        (salal_tui, ["--review", str(run), "--images", "blocks"], "salal-tui"),
    ]
    for command, args, name in commands:
        assert command(args) == 2, args
        assert capsys.readouterr().err.splitlines() == [
            f"{name}: error: {run / 'salal.db'} is not a salal run database (not an SQLite "
            "file); move it aside or pick another --out"
        ], args
    assert (run / "salal.db").read_bytes() == before


def test_a_run_that_failed_on_its_data_leaves_its_out_free_for_the_corrected_one(
    synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    out, cache = tmp_path / "run", tmp_path / "c"
    assert main(tiny_cli("run", tmp_path / "typo.tar.gz", out, cache)) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(tiny_cli("run", synthetic_pack, out, cache, *ROUNDS, "--budget", "0.3")) == 0
    assert json.loads((out / "summary.json").read_text())["labeled"] == 48


def test_classes_are_refused_for_a_source_that_names_its_own(
    synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    out, cache = tmp_path / "run", tmp_path / "c"
    assert main(tiny_cli("run", synthetic_pack, out, cache, "--classes", "a,b")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "salal-core: error: this source names its own classes (blue, green, red, yellow); "
        "drop --classes, which is for folders without class folders"
    )
    same = ("--classes", "blue,green,red,yellow", *ROUNDS, "--budget", "0.3")
    assert main(tiny_cli("run", synthetic_pack, out, cache, *same)) == 0  # harmless


def test_a_source_without_a_test_split_says_its_accuracy_is_held_out(
    tmp_path: Path, capsys
) -> None:
    folder = write_image_folder(tmp_path / "f", per_class_train=20, per_class_test=0)
    extra = (*ROUNDS, "--budget", "0.3")
    assert main(tiny_cli("run", folder, tmp_path / "run", tmp_path / "c", *extra)) == 0
    printed = capsys.readouterr()
    assert " in 2 rounds on rotnet: held-out accuracy " in printed.out
    rounds = [line for line in printed.err.splitlines() if " labeled -> " in line]
    assert len(rounds) == 2 and all(" labeled -> held-out accuracy " in r for r in rounds)
    assert "test acc" not in printed.err


def test_a_run_names_the_files_of_its_source_it_skipped(tmp_path: Path, capsys) -> None:
    folder = write_image_folder(tmp_path / "f", per_class_train=20, per_class_test=0)
    expected = add_entries_that_are_no_files(folder)
    out, extra = tmp_path / "run", (*ROUNDS, "--budget", "0.3")
    assert main(tiny_cli("run", folder, out, tmp_path / "c", *extra, "--json")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["skipped_files"] == [asdict(s) for s in expected]
    saved = RunSummary.from_json(json.loads((out / "summary.json").read_text()))
    assert saved.skipped_files == tuple(expected)
    assert main(["run", "--resume", str(out), "--budget", "0.4"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("; 5 files skipped (named in summary.json)")


def test_a_diverging_run_stops_in_one_line_and_resumes_at_a_lower_rate(
    synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "run"
    assert main(tiny_cli("run", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--lr", "1e30")) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("salal-core: error: pretrain diverged (loss ")  # nan or inf
    assert "with sgd at lr 1e+30; lower it with --lr" in err[-1]
    assert main(["run", "--resume", str(out), "--lr", "0.05", "--budget", "0.3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labeled"] == 48 and summary["config"]["active"]["optim"]["lr"] == 0.05


def test_compare_refuses_zero_seeds(tmp_path: Path) -> None:
    result = run_cli("compare", "--seeds", "0", "--out", str(tmp_path / "c"))
    assert result.returncode == 2 and "--seeds must be at least 1" in result.stderr


def test_compare_refuses_an_unknown_strategy(tmp_path: Path, capsys) -> None:
    assert main(["compare", "--strategies", "entropy,entrpy", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "salal-core: error: unknown acquisition entrpy; choose from: entropy, variation_ratio, "
        "margin, qbc, qbc_kl, bald, typiclust, coreset, badge, cluster_margin, random\n"
    )


def test_bad_data_given_to_run_is_one_line_and_exit_2(tmp_path: Path, synthetic_pack: Path) -> None:
    import sqlite3

    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(synthetic_pack.read_bytes()[:5000])
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("not an archive")
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    mismatch = write_image_folder(tmp_path / "mismatch", per_class_train=1, per_class_test=1)
    (mismatch / "test" / "red").rename(mismatch / "test" / "crimson")
    old = tmp_path / "old-run"
    RunStore(old, create=True).close()
    db = sqlite3.connect(old / "salal.db")
    db.execute("UPDATE meta SET value='0' WHERE key='format'")
    db.commit()
    db.close()
    cases = [
        (["--data", str(truncated)], "truncated or not a tar archive"),
        (["--data", str(junk)], "truncated or not a tar archive"),
        (["--data", str(empty)], "no images found"),
        (["--data", str(mismatch)], "same class folders"),
    ]
    for i, (args, message) in enumerate(cases):
        result = run_cli(
            "run",
            *args,
            "--out",
            str(tmp_path / f"r{i}"),
            "--device",
            "cpu",
            "--cache-dir",
            str(tmp_path / "c"),
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    result = run_cli("run", "--resume", str(old))
    assert result.returncode == 2 and "incompatible salal" in result.stderr


def test_bench_prints_every_figure_as_json(
    synthetic_pack: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salal_core.data import load

    decoded: list[Path] = []
    read_source = load.read_source
    monkeypatch.setattr(
        load, "read_source", lambda path, *a: decoded.append(path) or read_source(path, *a)
    )
    code = main(tiny_cli("bench", synthetic_pack, None, tmp_path / "c", *ROUNDS, "--steps", "2"))
    assert code == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout is the JSON alone; people read stderr
    assert result["device"] == "cpu" and result["torch"] and result["date"]
    for phase in ("decoding, cold and warm", "fine-tuning", "a whole tiny run"):
        assert f"done {phase}" in captured.err
    finetune = f"{result['finetune']['images_per_second']:,.0f} img/s"
    assert "salal bench: cpu, preset tiny" in captured.err and finetune in captured.err
    assert result["decode"]["cold_seconds"] > result["decode"]["warm_seconds"] > 0
    assert decoded == [synthetic_pack]  # once: the later loads, the run's too, use the cache
    assert len(list((tmp_path / "c").glob("decoded-*.npz"))) == 1
    for phase in ("pretrain", "finetune", "naive_finetune"):
        assert result[phase]["images_per_second"] > 0
    score = result["score_pool"]
    assert score["pool"] == 160 and score["seconds"] > 0
    assert score["seconds"] == pytest.approx(score["pool_pass_seconds"] + score["select_seconds"])
    speedup = (
        result["finetune"]["images_per_second"] / result["naive_finetune"]["images_per_second"]
    )
    assert result["finetune_speedup_over_naive"] == pytest.approx(speedup)
    end = result["end_to_end"]
    assert end["rounds"] >= 2 and end["seconds"] > 0 and 0 <= end["final_test_accuracy"] <= 1


def test_a_collapsed_pretraining_stops_a_headless_run_and_says_so(
    shared_slice: Path, tmp_path: Path, capsys
) -> None:
    """The paper recipe's Adam at a hundred times the write-up's 0.3, on CIFAR-10 at tiny
    scale: past the first 100 steps the rotation loss settles at ln 4 with accuracy at chance
    (from epoch 7 of 10 when measured). The run stops, saved, in one line naming --lr and a
    recipe this machine runs, and resumes at a lower rate. (At ten times, 3.0, it still
    learns a little on some CPUs: training accuracy 0.29, so it is not a collapse.)"""
    out = tmp_path / "run"
    args = tiny_cli("run", shared_slice, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    args[args.index("--preset") + 1] = "paper"
    args[args.index("--pretrain-epochs") + 1] = "10"
    args += ["--pretrain-steps", "200", "--lr", "30"]  # 20 steps an epoch: judged from epoch 5
    args += ["--round-steps", "50"]  # the rounds after the resume are not what is tested
    args[args.index("--width") + 1] = "4"
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("salal-core: error: pretrain collapsed: from epoch ")
    assert " the loss sits at ln 4 (1.3" in last and "accuracy at chance (0.2" in last
    assert "with adam at lr 30.0; lower it with --lr" in last and "or use --preset cpu" in last
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "collapsed"
    assert main(["run", "--resume", str(out), "--lr", "0.001"]) == 0
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "budget"
