"""`salal-tui --join` as a person uses it: the real app (Pilot) joined to a real `salal-core
serve`, labeling beside a scripted labeler; and the command line's one-line refusals."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from team_driver import Labeler, Truth, kill_service, new_run, start_service
from test_tui import NAMES, make_session, screen_text, scripted_app, truth

from helpers import CLASSES, SIZE, TRAINING_WAIT, random_backbone, wait_for
from salal_core.events import DataLoaded, LabeledCount, LabelsAdded
from salal_core.run.contents import OpenedRun
from salal_core.run.store import RunStore
from salal_core.team.endpoint import socket_path
from salal_tui.__main__ import main as tui_main
from salal_tui.app import SalalApp
from salal_tui.bridge import EventBridge
from salal_tui.desk import JoinedDesk
from salal_tui.launch import label_alone
from salal_tui.screens import GridScreen, QuitScreen, ReviewScreen


def rows(run: Path) -> list[tuple[str, int, str, str]]:
    store = RunStore(run, create=False, lock=False)
    found = [(r.kind, r.item, r.labeler, r.oracle or "") for r in store.journal_rows()]
    store.close()
    return [row for row in found if row[2]]


async def test_a_joined_app_labels_undoes_and_accepts_beside_another_labeler(
    tmp_path: Path,
) -> None:
    # A backbone given, not pretrained: two seeded batches without guesses come first, and
    # none after them; the budget leaves the model's own choices, with guesses, to accept.
    backbone = random_backbone(tmp_path / "pretrain.pt", 4)
    run, args = new_run(tmp_path, "--pretrained", str(backbone), "--budget", "0.9")
    proc = start_service(run, *args, log=tmp_path / "serve.log")
    truth = Truth(run, sorted(CLASSES))
    ben = Labeler(run, "ben", truth, pause=0.2)
    try:
        bridge = EventBridge()
        desk = JoinedDesk(run, "ana", bridge)
        app = SalalApp(desk, bridge, False, desk)
        async with app.run_test(size=SIZE) as pilot:
            ben.start()
            screen = app.label_screen
            typed = []
            for _ in range(4):
                await wait_for(pilot, lambda: screen.shown is not None and bool(screen.class_names))
                shown = screen.shown
                assert shown is not None
                await pilot.press(str(truth(shown.item) + 1))  # keys 1-4: the classes in order
                typed.append(shown.item)
                await wait_for(pilot, lambda s=shown: screen.shown != s)
            await pilot.press("backspace")  # takes back ana's last answer, not ben's
            await wait_for(pilot, lambda: screen.shown is not None)
            assert screen.shown.item == typed[-1]
            await pilot.press("g")
            grid = app.screen
            assert isinstance(grid, GridScreen)
            await wait_for(pilot, lambda: bool(grid.page))

            def guessed() -> bool:
                return any(not q.cold_start for q in grid.page if q.index not in grid.answers)

            while not guessed():  # the seeded images have no guess: typed, as a person would
                await wait_for(
                    pilot, lambda: grid._target() is not None or guessed(), TRAINING_WAIT
                )
                target = grid._target()
                if target is not None and not guessed():
                    await pilot.press(str(truth(target.item) + 1))
            for _ in range(8):
                await pilot.press("minus")  # a bar of 0%: every guess the model has
            await pilot.press("enter")
            await pilot.pause(0.3)
            await pilot.press("g")
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("y")
    finally:
        ben.stop.set()
        ben.join(60)
        kill_service(proc)
    assert ben.error is None
    journaled = rows(run)
    ana = [(kind, item) for kind, item, who, _ in journaled if who == "ana"]
    assert ana[:5] == [*[("label", item) for item in typed], ("revert", typed[-1])]
    labels = [item for kind, item, who, _ in journaled if kind == "label"]
    reverted = {item for kind, item, _, _ in journaled if kind == "revert"}
    assert len(labels) - len(reverted) == len(set(labels))  # no image answered by both
    assert {who for _, _, who, _ in journaled} == {"ana", "ben"}
    accepted = {item for _, item, who, oracle in journaled if oracle == "accepted"}
    assert accepted and all(who == "ana" for _, item, who, _ in journaled if item in accepted)


async def test_a_lone_app_labels_through_a_private_service_that_others_may_join(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    """`salal-tui` alone: the app is a client of its run's private service. Another labeler
    joins it; ctrl+r reviews over the socket, journals the correction as the app's own
    labeler's, and shows that labeler's own answers alone with ctrl+o; quitting ends the
    service and lets go of the run."""
    run = tmp_path / "run"
    app = label_alone(make_session(synthetic_pack, tmp_path / "c", run, auto=False), "ana")
    ben = Labeler(run, "ben", lambda item: 0, pause=0.05)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.label_screen
            assert socket_path(run).is_socket()
            with contextlib.redirect_stderr(io.StringIO()) as err:  # (the app holds stderr)
                assert tui_main(["--resume", str(run), "--images", "blocks"]) == 2  # a second
            assert f"label beside them with: salal-tui --join {run}" in err.getvalue()
            for _ in range(4):
                await wait_for(pilot, lambda: screen.shown is not None)
                shown = screen.shown
                await pilot.press(screen.query_one("ClassList").keys[truth(app, shown.index)])
                await wait_for(pilot, lambda s=shown: screen.shown != s)
            ben.start()
            await wait_for(pilot, lambda: bool(ben.acknowledged))
            await wait_for(pilot, (run / "checkpoints" / "pretrain.pt").exists, TRAINING_WAIT)
            await pilot.press("ctrl+r")
            review = app.screen
            assert isinstance(review, ReviewScreen)
            await wait_for(pilot, lambda: review.current is not None, TRAINING_WAIT)
            doubt = review.current
            other = (doubt.given + 1) % len(review.class_names)
            await pilot.press(review.query_one("ClassList").keys[other])
            assert review.corrected == 1 and review.current != doubt
            await pilot.press("ctrl+o")  # ana's own answers only
            await wait_for(pilot, lambda: review.current is not None, TRAINING_WAIT)
            assert review.only == "ana" and {d.labeler for d in review.doubts} == {"ana"}
            assert len(review.doubts) < len(OpenedRun.read(run).labels)  # not ben's, nor seeds
            await pilot.press("q")
            assert app.screen is screen
            ben.stop.set()
            ben.join(60)
            await pilot.press("q", "y")
            await wait_for(pilot, lambda: app.return_code is not None)
    finally:
        ben.stop.set()
    assert ben.error is None and app.return_code == 0
    assert not socket_path(run).exists()  # the private service ended with its app
    RunStore(run, create=False).close()  # and let go of the run
    corrected = OpenedRun.read(run).labels[doubt.item]
    assert (corrected.label, corrected.labeler, corrected.oracle) == (other, "ana", "human")
    assert {who for _, _, who, _ in rows(run)} == {"ana", "ben"}


def test_a_lone_labeler_named_carries_on_under_that_name(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    app = label_alone(make_session(synthetic_pack, tmp_path / "c", run, auto=False), "ana2")
    try:
        assert app.desk.carry_on == f"salal-tui --resume {run} --name ana2"
    finally:
        app.runner.close()


def test_join_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tui_main(["--join", str(tmp_path), "--images", "blocks"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no salal service answers" in err and "serve" in err
    assert tui_main(["--join", str(tmp_path), "--auto-oracle", "--images", "blocks"]) == 2
    assert "--auto-oracle belongs to the service" in capsys.readouterr().err
    assert tui_main(["--join", str(tmp_path), "--name", "a b", "--images", "blocks"]) == 2
    assert "is not a labeler name" in capsys.readouterr().err
    assert tui_main(["--name", "a b", "--images", "blocks"]) == 2  # alone, as joined
    assert "is not a labeler name" in capsys.readouterr().err
    assert tui_main(["--labeler", "ana", "--images", "blocks"]) == 2
    assert "--labeler goes with --review" in capsys.readouterr().err


async def test_the_progress_line_shows_the_runs_count_as_its_service_tells_it(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    """Each app showed the engine's count and its own answers: 103, 107 and 88 at one moment,
    and 0 in round 0 after a restart. The service's count is everybody's, and says the round."""
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=SIZE) as pilot:
        app.bridge(DataLoaded("drawn", 300, 0, NAMES, 0.1, True))
        app.bridge(LabelsAdded(1, (0,), (0,), "human", 80, 150))  # the engine's own count
        app.bridge(LabeledCount(103, 2))  # the run's: with everybody's answers not yet taken
        await pilot.pause(0.3)
        text = "\n".join(screen_text(app))
    assert "labeled 103 / 150   round 2" in text
