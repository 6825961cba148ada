"""Several labelers in one journal: whose answer counts, the format-3 migration, and the
agreement figures against hand computations."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import downgrade_to_format_3
from salal_core.cli.main import main
from salal_core.config import RunConfig
from salal_core.errors import SalalError
from salal_core.run.agreement import fleiss_kappa, measure
from salal_core.run.formats import FORMAT_VERSION
from salal_core.run.labelers import checked_name, owner_name
from salal_core.run.oracle import SKIP, Answer
from salal_core.run.store import RunStore


def said(item: int, label: int, labeler: str, client_id: str | None = None) -> Answer:
    return Answer(item, item, label, 1, "human", 0.0, labeler, client_id)


def counting(store: RunStore) -> dict[int, tuple[int, str]]:
    return {i: (r.label, r.labeler) for i, r in store.labels().items()}


def test_one_answer_an_image_the_latest_counts_and_undo_is_ones_own(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.record_answers([said(1, 3, "ana"), said(2, 0, "ben")])
    store.record_answers([said(1, 4, "ben")])  # a correction in review replaces the label
    assert counting(store) == {1: (4, "ben"), 2: (0, "ben")}
    store.record_reverts([1], "ben")  # ben takes back his own answer only: ana's stands again
    assert counting(store) == {1: (3, "ana"), 2: (0, "ben")}
    store.record_reverts([2], "ana")  # ana never answered item 2: nothing changes
    assert counting(store) == {1: (3, "ana"), 2: (0, "ben")}
    store.record_answers([said(2, SKIP, "ben")])  # a skip leaves his earlier answer standing
    assert counting(store) == {1: (3, "ana"), 2: (0, "ben")}
    store.close()


def test_with_overlap_the_first_answer_counts_until_all_are_in_then_the_majority(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.questions.set_overlap(3)
    store.record_answers([said(7, 1, "ana")])
    store.record_answers([said(7, 2, "ben")])
    assert counting(store) == {7: (1, "ana")}  # two of three: the first answer
    store.record_answers([said(7, 2, "cy")])
    assert counting(store) == {7: (2, "ben")}  # all three: the majority
    store.record_answers([said(8, 0, "cy"), said(8, 1, "ana"), said(8, 2, "ben")])
    assert counting(store)[8] == (0, "cy")  # a three-way tie: the earliest answer
    store.close()
    assert RunStore(tmp_path / "run", create=False).questions.overlap == 3  # kept in the run


def test_a_resent_answer_is_journaled_once(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.record_answers([said(1, 2, "ana", "c-1"), said(2, 0, "ana", "c-2")])
    store.record_answers([said(1, 2, "ana", "c-1")])  # the acknowledgement was lost
    store.record_answers([said(1, 2, "ben", "c-1")])  # another labeler's id is their own
    store.record_reverts([2], "ana", "c-3")
    store.record_reverts([2], "ana", "c-3")
    rows = store.journal_rows()
    assert [(r.kind, r.item, r.labeler) for r in rows] == [
        ("label", 1, "ana"),
        ("label", 2, "ana"),
        ("label", 1, "ben"),
        ("revert", 2, "ana"),
    ]
    store.close()


def test_a_format_3_run_is_migrated_its_persons_answers_named_after_its_owner(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.record_answers([said(1, 3, "x"), Answer(2, 2, 1, 0, "initial", 0.0)])
    store.record_reverts([1], "x")
    store.record_answers([said(1, 4, "x")])
    store.close()
    downgrade_to_format_3(tmp_path / "run" / "salal.db")

    reader = RunStore(tmp_path / "run", create=False, lock=False, read_only=True)
    assert reader.format == 3 and {i: r.label for i, r in reader.labels().items()} == {1: 4, 2: 1}
    reader.close()
    owner = owner_name(tmp_path / "run" / "salal.db")
    store = RunStore(tmp_path / "run", create=False)
    assert store.format == FORMAT_VERSION
    assert [r.labeler for r in store.journal_rows()] == [owner, "", owner, owner]
    assert counting(store) == {1: (4, owner), 2: (1, "")}
    store.record_answers([said(5, 0, "ana", "c-1"), said(5, 0, "ana", "c-1")])  # index is there
    assert len(store.journal_rows()) == 5
    store.close()


def test_agreement_figures_equal_a_hand_computation() -> None:
    # Two labelers over 10 images, 2 classes: they agree on 7 (4 both class 0, 3 both class
    # 1) and disagree on 3 (ana 0 / ben 1 on two, ana 1 / ben 0 on one).
    pairs = [(0, 0)] * 4 + [(1, 1)] * 3 + [(0, 1)] * 2 + [(1, 0)]
    answers = {i: {"ana": a, "ben": b} for i, (a, b) in enumerate(pairs)}
    answers[10] = {"ana": 1}  # answered once: counted, not compared
    found = measure(answers, classes=2)
    assert [(c.labeler, c.answers) for c in found.labelers] == [("ana", 11), ("ben", 10)]
    assert found.overlapping == 10 and found.observed == pytest.approx(0.7, abs=1e-12)
    # Cohen: ana says 0 six times, ben five times; chance = .6*.5 + .4*.5 = .5.
    pair = found.pairs[0]
    assert (pair.first, pair.second, pair.images) == ("ana", "ben", 10)
    assert pair.kappa == pytest.approx((0.7 - 0.5) / (1 - 0.5), abs=1e-9)
    # Fleiss: class shares over all 20 answers: 11/20 and 9/20.
    chance = (11 / 20) ** 2 + (9 / 20) ** 2
    assert found.fleiss == pytest.approx((0.7 - chance) / (1 - chance), abs=1e-9)
    assert sorted(d.item for d in found.disputed) == [7, 8, 9]
    assert found.disputed[0].answers == (("ana", 0), ("ben", 1))


def test_fleiss_with_three_raters_and_edge_cases() -> None:
    # Fleiss (1971)'s form: P_i = (sum n_ij^2 - n) / (n (n - 1)).
    rated = [[0, 0, 0], [0, 0, 1], [1, 1, 2], [2, 2, 2]]
    p_bar = (1 + 1 / 3 + 1 / 3 + 1) / 4
    shares = [5 / 12, 3 / 12, 4 / 12]
    chance = sum(s * s for s in shares)
    assert fleiss_kappa(rated, 3) == pytest.approx((p_bar - chance) / (1 - chance), abs=1e-9)
    assert fleiss_kappa([[1, 1], [1, 1]], 3) == 1.0  # one class throughout: they agree
    assert math.isnan(fleiss_kappa([[1]], 3))  # nothing answered twice
    assert math.isnan(measure({1: {"ana": 0}}, 2).observed)


def test_labeler_names_are_checked_in_one_line() -> None:
    assert checked_name("ana.b-1@lab") == "ana.b-1@lab"
    for bad in ("", "-x", "a b", "x" * 33, "ä"):
        with pytest.raises(SalalError, match="is not a labeler name"):
            checked_name(bad)


def test_agreement_command_and_export_name_each_labeler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.save_config(RunConfig())
    store.save_classes(["cat", "dog"])
    store.questions.set_overlap(2)
    store.record_answers([said(1, 0, "ana"), said(2, 1, "ana"), said(1, 0, "ben")])
    store.record_answers([said(2, 0, "ben")])
    store.close()
    assert main(["agreement", str(tmp_path / "run"), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["overlapping"] == 2 and figures["observed"] == 0.5
    assert figures["disputed"][0]["item"] == 2
    assert main(["agreement", str(tmp_path / "run")]) == 0
    shown = capsys.readouterr().out
    assert "observed agreement 0.500" in shown and "ana: dog, ben: cat" in shown
    assert main(["export", str(tmp_path / "run"), "--history"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split(",") == [
        "index",
        "source",
        "label",
        "class",
        "oracle",
        "labeler",
        "round",
        "time",
        "current",
    ]
    current = [(r.split(",")[0], r.split(",")[5], r.split(",")[-1]) for r in rows[1:]]
    # Item 2: both answered, tied 1-1, so the earliest (ana's) counts.
    assert current == [
        ("1", "ana", "True"),
        ("2", "ana", "True"),
        ("1", "ben", "False"),
        ("2", "ben", "False"),
    ]


def test_agreement_json_into_a_pipe_its_reader_closed_ends_quietly(tmp_path: Path) -> None:
    """`salal-core agreement RUN_DIR --json | head`: the reader has all it wanted."""
    RunStore(tmp_path / "run", create=True).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "salal_core.cli", "agreement", str(tmp_path / "run"), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # gone before the command writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 0 and err == ""
