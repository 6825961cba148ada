"""Review: confident learning's ranking on a hand-worked case, label noise that flips exactly
its share, and the command finding the flipped labels first on a small run."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch

from helpers import ROUNDS, tiny_cli
from salal_core.cli.main import main
from salal_core.run.oracle import Answer
from salal_core.run.review import rank
from salal_core.run.store import RunStore


def test_a_confident_other_class_makes_a_suspect() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.8, 0.2], [0.6, 0.4]])
    given = torch.tensor([0, 1, 1, 0])
    # Thresholds: class 0, mean of 0.9 and 0.6 = 0.75; class 1, mean of 0.8 and 0.2 = 0.5.
    # Image 2 is labeled 1, but class 0 clears its bar (0.8 >= 0.75): the one suspect.
    order, suspect = rank(probs, given)
    assert suspect.tolist() == [False, False, True, False]
    assert order.tolist() == [2, 3, 1, 0]  # then the least sure of their label: 0.6, 0.8, 0.9
    order, _ = rank(probs, given, torch.tensor([False, False, False, True]))
    assert order.tolist() == [3, 2, 1, 0]  # labelers disagreeing on it comes before all


def test_label_noise_flips_its_share_and_review_finds_them_first(
    synthetic_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    extra = [*ROUNDS, "--initial-fraction", "0.5", "--budget", "0.6", "--label-noise", "0.1"]
    extra[extra.index("--epochs-per-round") + 1] = "3"
    assert main(tiny_cli("run", synthetic_pack, out, tmp_path / "c", *extra)) == 0
    assert "--label-noise: 8 of the initial labels are wrong on purpose" in capsys.readouterr().err
    assert main(["export", str(out)]) == 0
    labels = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    wrong = {r["index"] for r in labels if Path(r["source"]).parent.name != r["class"]}
    assert len(wrong) == 8  # 10% of the 80 initial labels, flipped to another class
    assert main(["review", str(out), "--top", "8", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [r["rank"] for r in rows] == [str(n) for n in range(1, 9)]
    found = sum(r["index"] in wrong for r in rows)
    assert found >= 5, rows  # a random order would find 0.8 of them
    assert "precision at 96:" in captured.err and "a random order finds 8.0" in captured.err

    # Two labelers answer an image differently: it comes first, with both answers.
    item, other = int(labels[0]["index"]), int(labels[1]["index"])
    store = RunStore(out, create=False)
    store.record_answers(
        [
            Answer(-1, item, 0, 1, "human", 1.0, "ana"),
            Answer(-1, other, 2, 1, "human", 1.0, "ana"),
            Answer(-1, item, 1, 1, "human", 2.0, "ben"),
        ]
    )
    names = store.class_names()
    store.close()
    assert main(["review", str(out), "--top", "1", "--device", "cpu"]) == 0
    first = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert first["index"] == str(item) and first["labeler"] == "ben"  # the latest counts
    assert first["disputed"] == f"ana:{names[0]} ben:{names[1]}"
    assert main(["review", str(out), "--labeler", "ana", "--device", "cpu"]) == 0
    mine = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["index"], r["given"]) for r in mine] == [
        (str(item), names[0]),
        (str(other), names[2]),
    ]
    assert main(["review", str(out), "--labeler", "cy", "--device", "cpu"]) == 2
    assert "cy has no labels" in capsys.readouterr().err


async def test_correcting_two_labels_in_the_app_keeps_their_history(
    synthetic_pack: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from helpers import SIZE, wait_for
    from salal_core.run import review
    from salal_core.run.contents import OpenedRun
    from salal_core.run.store import RunStore
    from salal_tui.review_app import ReviewApp

    out = tmp_path / "run"
    extra = [*ROUNDS, "--initial-fraction", "0.5", "--budget", "0.6", "--label-noise", "0.1"]
    assert main(tiny_cli("run", synthetic_pack, out, tmp_path / "c", *extra)) == 0

    def in_the_apps_process(*_: object) -> None:
        raise AssertionError("the review's probes ran beside the keys")

    monkeypatch.setattr(review, "out_of_sample", in_the_apps_process)  # the child has its own
    images = OpenedRun.read(out).load_images().images
    store = RunStore(out, create=False)
    app = ReviewApp(store, "cpu")
    corrected: dict[str, str] = {}
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.review
            await wait_for(pilot, lambda: screen.current is not None)
            names = screen.class_names
            # who gave the label is said beside it: these came from the ground truth
            assert "from the ground truth" in str(screen.query_one("#query").render())
            for _ in range(2):  # correct each to the class of the folder it came from
                doubt = screen.current
                assert doubt is not None
                truth = int(images.train.labels[doubt.position])
                other = truth if truth != doubt.given else (doubt.given + 1) % len(names)
                await pilot.press("1234"[other])
                corrected[str(doubt.item)] = names[other]
            confirmed = screen.current
            assert confirmed is not None
            await pilot.press("1234"[confirmed.given])  # the same class: confirmed, no record
            assert screen.at == 3 and screen.corrected == 2
            await pilot.press("q")
    finally:
        store.close()
    capsys.readouterr()
    assert main(["export", str(out)]) == 0
    latest = {r["index"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert {i: latest[i]["class"] for i in corrected} == corrected
    assert all(latest[i]["oracle"] == "human" for i in corrected)
    assert latest[str(confirmed.item)]["oracle"] != "human"
    assert main(["export", str(out), "--history"]) == 0
    history = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    for item in corrected:
        mine = [r for r in history if r["index"] == item]
        assert [r["current"] for r in mine] == ["False", "True"]
