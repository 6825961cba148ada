"""The app driven like a person would: Pilot key presses against a real engine on tiny data,
snapshots of each screen, and an auto-oracle run to the summary screen."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    SIZE,
    TRAINING_WAIT,
    finished_summary,
    journal,
    split_of,
    summary_text,
    tiny_config,
    wait_for,
)
from salal_core.config import with_overrides
from salal_core.data.sources import ImageSet
from salal_core.events import (
    DataLoaded,
    EpochEnded,
    LabelsAdded,
    PhaseStarted,
    Query,
    QueryReady,
    RoundEnded,
    RunFinished,
)
from salal_core.run.agreement import measure
from salal_core.run.factory import open_session
from salal_core.run.session import Session
from salal_core.run.summary import CurvePoint
from salal_tui.app import SalalApp
from salal_tui.bridge import EventBridge
from salal_tui.launch import PrivateRun, label_alone, watch
from salal_tui.screens import GridScreen, HelpScreen, LabelScreen, QuitScreen


def make_session(pack: Path, cache: Path, out: Path, auto: bool, **overrides) -> Session:
    config = tiny_config(
        pack,
        cache,
        **{"active.query_size": 8, "active.lookahead": 2, "active.budget": 0.3, **overrides},
    )
    return open_session(config, out, oracle="auto" if auto else "human")


def make_app(pack: Path, cache: Path, out: Path, auto: bool, **overrides) -> SalalApp:
    session = make_session(pack, cache, out, auto, **overrides)
    return watch(session) if auto else label_alone(session, "tester")  # as salal-tui


def truth(app: SalalApp, index: int) -> int:
    runner = app.runner
    session = runner.session if isinstance(runner, PrivateRun) else app.session
    images = session.images.loaded
    assert images is not None
    return int(images.train.labels[index])


async def test_label_undo_skip_help_and_quit(synthetic_pack: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    app = make_app(synthetic_pack, tmp_path / "c", out, auto=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        await wait_for(pilot, lambda: screen.shown is not None)
        first = screen.shown.index
        await pilot.press("2")  # the second class
        assert journal(out) == {first: 1}  # on disk before the next image is drawn
        second = screen.shown.index
        assert second != first
        await pilot.press("backspace")
        assert screen.shown.index == first and journal(out) == {}
        await pilot.press("3")
        assert journal(out) == {first: 2}
        await pilot.press("space")  # skip the second item
        assert screen.shown.index != second and second not in journal(out)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.query_one("#help-box").content_size.width >= 60  # its text shows
        await pilot.press("escape")
        assert isinstance(app.screen, LabelScreen)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        assert app.screen.query_one("#quit-box").content_size.width >= 60
        await pilot.press("n")
        assert isinstance(app.screen, LabelScreen)
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)  # once the engine stopped
    assert journal(out) == {first: 2}
    assert app.return_code == 0


async def test_labels_reach_the_engine_and_a_round_trains(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    app = make_app(synthetic_pack, tmp_path / "c", out, auto=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        for _ in range(16):  # two query batches of eight
            await wait_for(pilot, lambda: screen.shown is not None)
            await pilot.press(screen.query_one("ClassList").keys[truth(app, screen.shown.index)])
        # Both batches were seeded and typed while the backbone pretrained: the rest of the
        # pretraining and three rounds lie between the last key and the summary.
        text = await summary_text(pilot, app, TRAINING_WAIT)
        assert "agree with the ground truth on 100.0%" in text
        await pilot.press("q")
    assert len(journal(out)) == 16


async def test_resume_in_the_app_carries_on_where_the_person_stopped(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    app = make_app(synthetic_pack, tmp_path / "c", out, auto=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        for _ in range(5):
            await wait_for(pilot, lambda: screen.shown is not None)
            await pilot.press("1")
        next_up = screen.shown.index  # on screen, not answered
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    first = journal(out)
    assert len(first) == 5

    session = open_session(None, out, oracle="human", resume=True)
    app = label_alone(session, "tester")  # what `salal-tui --resume RUN_DIR` builds
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        await wait_for(pilot, lambda: screen.shown is not None)
        assert screen.shown.index == next_up  # the queue picks up in the order it was asked
        progress = str(screen.query_one("#progress-text").render())
        await pilot.press("2")
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    second = journal(out)
    assert first.items() <= second.items() and second[next_up] == 1 and len(second) == 6
    assert "labeled" in progress and f"{len(first)} queued" not in progress


async def test_auto_oracle_runs_to_the_summary(synthetic_pack: Path, tmp_path: Path) -> None:
    app = make_app(synthetic_pack, tmp_path / "c", tmp_path / "run", auto=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("plus", "plus", "plus")
        text = await summary_text(pilot, app)
        screen = app.label_screen
        assert len(screen.query_one("#loss").values) >= 2
        assert screen.query_one("ClassList").names
        assert "Run finished" in text
        await pilot.press("enter")
    assert app.return_value is not None and app.return_value.labeled == 48


async def test_small_terminal_shows_a_message(synthetic_pack: Path, tmp_path: Path) -> None:
    app = make_app(synthetic_pack, tmp_path / "c", tmp_path / "run", auto=True)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert app.label_screen.has_class("too-small")
        assert app.label_screen.query_one("#too-small").display
        assert app.runner is not None
        app.runner.stop()


# ---------------------------------------------------------------------------- snapshots


def scripted_app(tmp_path: Path, pack: Path, acquisition: str = "margin") -> SalalApp:
    """An app whose events come from the test, so that every frame is the same each run."""
    config = with_overrides(tiny_config(pack, tmp_path / "c"), {"active.acquisition": acquisition})
    session = open_session(config, tmp_path / "run", oracle="human")
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.zeros((4, 32, 32, 3), np.uint8)
    images[..., 0], images[..., 1] = yy * 8, xx * 8
    images[:, 8:24, 8:24, 2] = 255
    session.images.provide(
        ImageSet(
            split_of(images, np.arange(4), [f"{i}.png" for i in range(4)]),
            split_of(images[:0], np.zeros(0, np.int64), []),
            list(NAMES),
            "drawn",
        )
    )
    return SalalApp(session, EventBridge(), auto=False)


# CIFAR-10's classes: ten, so the class list runs to two columns.
NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def guesses(*top: float) -> tuple[float, ...]:
    """Ten probabilities starting with `top`, the rest shared out evenly."""
    rest = (1 - sum(top)) / (10 - len(top))
    return (*top, *([rest] * (10 - len(top))))


def feed(app: SalalApp) -> None:
    bridge = app.bridge
    bridge(DataLoaded("drawn", 4, 0, NAMES, 0.1, True))
    bridge(PhaseStarted("pretrain", 0, 3, 10))
    for e, (loss, acc) in enumerate([(1.3, 0.4), (0.9, 0.62), (0.7, 0.71)], 1):
        bridge(EpochEnded("pretrain", 0, e, 3, loss, acc, loss, acc, 1234.0, 1.0))
    bridge(LabelsAdded(0, (0,), (0,), "initial", 1, 3))
    bridge(PhaseStarted("finetune", 0, 2, 4))
    for e, (loss, acc) in enumerate([(1.1, 0.5), (0.8, 0.6)], 1):
        bridge(EpochEnded("finetune", 0, e, 2, loss, 0.7, loss, acc, 900.0, 1.0))
    bridge(RoundEnded(0, 1, 3, 0.6, 3, float("nan"), float("nan")))
    queries = (
        Query(2, 2, 0.812, 1, guesses(0.13, 0.45, 0.12), 1),
        Query(3, 3, 0.5, 0, guesses(0.6, 0.2, 0.1), 1),
    )
    assert app.session.oracle is not None
    app.session.oracle.ask(queries)
    bridge(QueryReady(1, queries))


async def settle(pilot) -> None:
    feed(pilot.app)
    await pilot.pause(0.2)


def screen_text(app: SalalApp) -> list[str]:
    """The terminal's rows as a person sees them (from the SVG Textual exports)."""
    svg = app.export_screenshot()
    rows: dict[str, list[tuple[float, str]]] = {}
    for y, x, text in re.findall(r'<text[^>]*x="([0-9.]+)" y="([0-9.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(x, []).append((float(y), html.unescape(text).replace("\xa0", " ")))
    return [
        "".join(t for _, t in sorted(parts))
        for _, parts in sorted(rows.items(), key=lambda r: float(r[0]))
    ]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_class_key_and_guess_is_on_screen(
    size: tuple[int, int], tmp_path: Path, synthetic_pack: Path
) -> None:
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        rows = screen_text(app)
    text = "\n".join(rows)
    for key, name in zip("1234567890", NAMES, strict=True):
        assert re.search(rf"\b{key}\s+{name}\b", text), (key, name, text)
    guess_rows = [r for r in rows if "model guesses" in r]
    assert guess_rows and "automobile 45%" in text and "airplane 13%" in text
    assert "bird 12%" in text  # the third guess whole, maybe on the next row, never cut


async def test_a_cold_start_says_there_is_no_model_yet(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=SIZE) as pilot:
        app.bridge(DataLoaded("drawn", 300, 0, NAMES, 0.1, True))
        cold = (Query(1, 1, 0.84, 0, (0.1,) * 10, 0),)
        assert app.session.oracle is not None
        app.session.oracle.ask(cold)
        app.bridge(QueryReady(0, cold))
        await pilot.pause(0.2)
        text = "\n".join(screen_text(app))
    assert "labeled 0 / 150" in text  # the tiny preset's budget: half of 300
    assert "cold start: picked from the pretrained features" in text
    assert "model guesses" not in text and "margin score" not in text
    assert "0.84" not in text  # typiclust's typicality is its own bookkeeping


async def test_a_batch_selectors_score_is_never_shown_to_a_person(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    """Typicality is 1 / a distance, 1e12 for an image with a duplicate: no number at all."""
    app = scripted_app(tmp_path, synthetic_pack, "typiclust")
    async with app.run_test(size=SIZE) as pilot:
        app.bridge(DataLoaded("drawn", 300, 0, NAMES, 0.1, True))
        query = (Query(1, 1, 999999995904.0, 1, guesses(0.13, 0.45, 0.12), 2),)
        assert app.session.oracle is not None
        app.session.oracle.ask(query)
        app.bridge(QueryReady(2, query))
        await pilot.pause(0.2)
        text = "\n".join(screen_text(app))
    assert "image #1" in text and "picked by typiclust" in text and "model guesses" in text
    assert "99999" not in text and "typiclust score" not in text


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_main_screen(
    size: tuple[int, int], snap_compare, tmp_path: Path, synthetic_pack: Path
) -> None:
    assert snap_compare(
        scripted_app(tmp_path, synthetic_pack), terminal_size=size, run_before=settle
    )


def test_snapshot_help_screen(snap_compare, tmp_path: Path, synthetic_pack: Path) -> None:
    assert snap_compare(
        scripted_app(tmp_path, synthetic_pack),
        terminal_size=SIZE,
        run_before=settle,
        press=["question_mark"],
    )


async def test_the_help_box_keeps_its_border_and_its_way_back_at_80x24(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    """At the smallest size the app draws, the keys scroll inside the box; the box's bottom
    border and the line that says how to leave stay on screen."""
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one("#help-box").region
        rows = screen_text(app)
    assert box.bottom <= 24 and box.right <= 80
    assert "press ? or escape to go back" in "\n".join(rows[-4:])
    assert re.fullmatch(r"\S▄{30,}\S", rows[-1].strip())  # the box's bottom border


def test_snapshot_grid_screen(snap_compare, tmp_path: Path, synthetic_pack: Path) -> None:
    """The queue as tiles at 100x30: three columns, two rows, the cursor on the first."""
    assert snap_compare(
        scripted_app(tmp_path, synthetic_pack),
        terminal_size=(100, 30),
        run_before=settle,
        press=["g"],
    )


async def test_the_grid_shows_each_tile_with_its_number_and_guess(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=(100, 30)) as pilot:
        app.bridge(DataLoaded("drawn", 4, 0, NAMES, 0.1, True))
        await pilot.pause(0.1)
        await pilot.press("g")  # before anything is queued: an empty grid, waiting
        await pilot.pause(0.1)
        grid = app.screen
        assert isinstance(grid, GridScreen) and grid._target() is None
        assert "no images queued" in "\n".join(screen_text(app))
        await settle(pilot)  # the engine asks: the grid takes the queries
        text = "\n".join(screen_text(app))
    assert "#2" in text and "guess automobile 45%" in text
    assert "#3" in text and "guess airplane 60%" in text
    assert "2 queued" in text and "accepts the guess on 0 tiles at ≥ 90%" in text


def test_snapshot_summary_screen(snap_compare, tmp_path: Path, synthetic_pack: Path) -> None:
    async def finish(pilot) -> None:
        await settle(pilot)
        app = pilot.app
        curve = tuple(
            CurvePoint(r, r + 1, (r + 1) / 4, acc, 1.0) for r, acc in enumerate([0.6, 0.7, 0.8])
        )
        summary = finished_summary(
            curve,
            app.session.config,
            oracle="human",
            train_size=4,
            target=3,
            human_labels=2,
            human_agreement=0.5,
            accepted_labels=3,
            accepted_agreement=2 / 3,
        )
        app.bridge(RunFinished(summary))
        await pilot.pause(0.2)

    assert snap_compare(
        scripted_app(tmp_path, synthetic_pack), terminal_size=SIZE, run_before=finish
    )


async def test_a_teams_summary_says_who_labeled_and_how_alike(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    from rich.console import Console

    from salal_tui.screens import SummaryScreen
    from salal_tui.screens.summary import agreement_table

    app = scripted_app(tmp_path, synthetic_pack)
    answers = {1: {"ana": 0, "ben": 0}, 2: {"ana": 1, "ben": 0}, 3: {"ana": 2}}
    curve = (CurvePoint(0, 3, 0.75, 0.5, 1.0),)
    team = finished_summary(curve, app.session.config, agreement=measure(answers, 3))
    alone = finished_summary(curve, app.session.config, agreement=measure({1: {"ana": 0}}, 3))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.bridge(RunFinished(team))
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert len(app.screen.query("#summary-agreement")) == 1
        app.push_screen(SummaryScreen(alone))
        await pilot.pause()
        assert len(app.screen.query("#summary-agreement")) == 0  # alone: as it always was
    console = Console(width=SIZE[0], record=True)
    console.print(agreement_table(team.agreement))
    shown = " ".join(console.export_text().split())
    assert "labelers: ana 3 · ben 2" in shown
    assert "observed agreement 0.500" in shown and "over 2 images" in shown
    assert "ana │ ben │ 2 │ 0.500" in shown  # the pair: two shared images, one agreed on


async def test_a_failing_disk_is_one_line_and_the_app_stays_up(
    synthetic_pack: Path, tmp_path: Path, monkeypatch
) -> None:
    """The journal refuses writes mid-session: the answer is not taken, the app says what to
    free and that everything before it is saved, and the same key works once there is room."""
    from salal_core.run import store as store_module

    out = tmp_path / "run"
    app = make_app(synthetic_pack, tmp_path / "c", out, auto=False)
    full = {"now": False}
    record = store_module.RunStore.record_answers

    def refusing(self, answers) -> None:
        if full["now"]:
            raise self._db.cannot_write(OSError(28, "No space left on device"))
        record(self, answers)

    monkeypatch.setattr(store_module.RunStore, "record_answers", refusing)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        await wait_for(pilot, lambda: screen.shown is not None)
        first = screen.shown
        await pilot.press("1")
        second = screen.shown
        full["now"] = True
        await pilot.press("2")
        message = str(screen.query_one("#message").render())
        assert "NOT SAVED" in message and "free some disk space" in message
        assert "every answer before this one is saved" in message
        assert screen.shown == second and app.is_running  # still asking about the same image
        await pilot.press("space")  # a skip is a write too
        assert screen.shown == second
        full["now"] = False
        await pilot.press("2")
        assert screen.shown != second
        assert journal(out) == {first.item: 0, second.item: 1}
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


def test_guesses_break_between_guesses_never_inside_one() -> None:
    from salal_tui.widgets.query_info import guess_lines

    guesses = ["automobile 45%", "airplane 13%", "bird 12%"]
    assert guess_lines(guesses, 60) == [guesses]
    assert guess_lines(guesses, 30) == [guesses[:2], guesses[2:]]  # 14 + 3 + 12 = 29
    assert guess_lines(guesses, 10) == [[g] for g in guesses]  # too narrow: one a line


def test_key_maps_one_key_then_two_then_a_persons_own(tmp_path: Path) -> None:
    from salal_core.errors import SalalError
    from salal_tui.keys import KeyMap

    assert KeyMap.default(10).codes == tuple("1234567890")
    assert len(KeyMap.default(34).codes[-1]) == 1
    forty = KeyMap.default(40).codes
    assert forty[:3] == ("11", "12", "13") and len(set(forty)) == 40
    keymap = KeyMap.default(40)
    assert keymap.starts("1") and keymap.lookup("1") is None and keymap.lookup("13") == 2
    path = tmp_path / "keys.txt"
    path.write_text("# mine\na cat\nbd dog\nbe bird\n")
    mine = KeyMap.read(path, ["cat", "dog", "bird"])
    assert mine.codes == ("a", "bd", "be") and mine.starts("b") and mine.lookup("a") == 0
    for text, message in [
        ("a cat\nab dog\nc bird\n", "keys 'a' and 'ab' clash"),
        ("a cat\nb dog\n", "gives no keys for bird"),
        ("a cat\nb dog\nc bird\nd fish\n", "line 4: this run has no class 'fish'"),
        ("q cat\nb dog\nc bird\n", "line 1: expected CODE CLASS"),
    ]:
        path.write_text(text)
        with pytest.raises(SalalError, match=message):
            KeyMap.read(path, ["cat", "dog", "bird"])


def app_with_keys(tmp_path: Path, pack: Path, keys_file: Path | None = None) -> SalalApp:
    """The scripted app, with the default keys or a person's own (--keys)."""
    app = scripted_app(tmp_path, pack)
    return SalalApp(app.session, EventBridge(), auto=False, keys_file=keys_file)


async def test_past_34_classes_a_code_of_two_keys_labels(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    names = tuple(f"species-{i:02d}" for i in range(40))
    app = app_with_keys(tmp_path, synthetic_pack)
    async with app.run_test(size=SIZE) as pilot:
        app.bridge(DataLoaded("drawn", 4, 0, names, 0.1, True))
        queries = (Query(2, 2, 0.5, 0, (1 / 40,) * 40, 1),)
        assert app.session.oracle is not None
        app.session.oracle.ask(queries)
        app.bridge(QueryReady(1, queries))
        await wait_for(pilot, lambda: app.label_screen.shown is not None)
        await pilot.press("1")
        assert "1… and the second key" in str(app.label_screen.query_one("#message").render())
        assert journal(tmp_path / "run") == {}  # nothing yet: one key is half a code
        await pilot.press("3")
    assert journal(tmp_path / "run") == {2: 2}  # "13" is the third class


async def test_a_persons_own_keys_label_and_a_bad_map_is_one_line(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("".join(f"{c} {n}\n" for c, n in zip("abcdefghij", NAMES, strict=True)))
    app = app_with_keys(tmp_path, synthetic_pack, keys)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")  # automobile, in this person's map
    assert journal(tmp_path / "run") == {2: 1}
    keys.write_text("a airplane\n")
    app = app_with_keys(tmp_path / "again", synthetic_pack, keys)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 2 and app.error and "gives no keys for automobile" in app.error


async def test_review_from_the_labeling_screen_comes_back_saying_why(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")  # the review screen opens, finds nothing to review, closes
        await wait_for(pilot, lambda: bool(app._notifications))
        assert isinstance(app.screen, LabelScreen)
        assert app.return_code is None  # the labeling goes on
        said = [n.message for n in app._notifications]
        assert any("fewer than two labels to review" in m for m in said), said


def test_a_key_map_missing_a_class_is_one_line_before_the_screen(
    tmp_path: Path, synthetic_pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the classes known (--classes, or a resumed run), a map that leaves one without a
    key is refused before Textual takes the terminal: one line on stderr, nothing drawn."""
    from salal_tui.__main__ import main as salal_tui

    keys = tmp_path / "keys.txt"
    keys.write_text("a cat\n")
    args = ["--data", str(synthetic_pack), "--device", "cpu", "--classes", "cat,dog"]
    assert salal_tui([*args, "--out", str(tmp_path / "R"), "--keys", str(keys)]) == 2
    out = capsys.readouterr()
    assert out.err == "salal-tui: error: keys.txt gives no keys for dog\n" and out.out == ""
    keys.write_text("a cat\nab dog\n")  # a code that starts another can never be typed
    assert salal_tui([*args, "--out", str(tmp_path / "R2"), "--keys", str(keys)]) == 2
    assert "keys 'a' and 'ab' clash" in capsys.readouterr().err


def test_the_top_line_of_a_training_phase_says_the_time_left() -> None:
    from salal_core.events import StepProgress
    from salal_tui.status import seconds_left, step_text

    assert seconds_left(30.0, 10, 40) == 90.0 and seconds_left(5.0, 0, 40) is None
    event = StepProgress("pretrain", 3, 1, 15)
    assert step_text(event, 0, 151.2) == "pretraining · epoch 3 · step 1/15 · 2:31 left"
    assert step_text(event, 0, None) == "pretraining · epoch 3 · step 1/15"


async def test_a_sentence_in_the_image_pane_wraps_at_80_columns() -> None:
    """At 80x24 the pane is about 40 columns: the whole sentence shows, over two lines."""
    from textual.app import App

    from salal_tui.widgets.image_view import ImageView

    class Pane(App[None]):
        CSS = "ImageView { width: 40; height: 10; }"

        def compose(self):
            yield ImageView()

    app = Pane()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(ImageView)
        said = "no images queued: the model is choosing the next ones"
        view.show(None, said)
        await pilot.pause()
        lines = [view.render_line(y).text.strip() for y in range(view.content_size.height)]
        assert " ".join(line for line in lines if line) == said
        assert all(len(line) <= view.content_size.width for line in lines)


async def test_the_summary_draws_the_curve_beside_the_cifar10_anchor() -> None:
    """On the full CIFAR-10 training set the anchor of the same strategy is drawn beside the
    run's own curve; on any other folder there is no reference."""
    from dataclasses import replace

    from textual.app import App

    from salal_core.config import preset
    from salal_core.run.reference import ENTROPY, RANDOM, reference_for
    from salal_tui.screens import SummaryScreen
    from salal_tui.widgets import CurveChart

    curve = tuple(CurvePoint(r, 10_000 + 2_500 * r, 0.2, 0.80 + r / 100, 1.0) for r in range(7))
    summary = finished_summary(
        curve, preset("fast"), preset="fast", acquisition="entropy", train_size=50_000
    )
    assert reference_for(summary) is ENTROPY
    assert reference_for(replace(summary, acquisition="margin")) is RANDOM
    assert reference_for(replace(summary, train_size=300)) is None

    class Summary(App[None]):
        def on_mount(self) -> None:
            self.push_screen(SummaryScreen(summary))

    app = Summary()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.screen.query(CurveChart)))
        await pilot.pause(0.1)
        drawn = str(app.screen.query_one(CurveChart).render())
    assert "this run (entropy)" in drawn and "entropy, H200 anchor" in drawn
    assert "labels" in drawn and "25000" in drawn


async def test_the_summary_names_the_files_of_the_source_it_skipped() -> None:
    from textual.app import App

    from salal_core.config import preset
    from salal_core.data.skipped import SkippedFile
    from salal_tui.screens import SummaryScreen

    skipped = (SkippedFile("shots/a[1].png", "unreadable"), SkippedFile("README", "dangling link"))
    curve = (CurvePoint(0, 3, 0.75, 0.5, 1.0),)
    summary = finished_summary(curve, preset("tiny"), skipped_files=skipped)

    class Summary(App[None]):
        def on_mount(self) -> None:
            self.push_screen(SummaryScreen(summary))

    app = Summary()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.screen.query("#summary-text")))
        text = " ".join(str(app.screen.query_one("#summary-text").render()).split())
    assert (
        "skipped files in the source: 1 unreadable, 1 dangling link (shots/a[1].png: unreadable, "
        "README: dangling link); all named in summary.json"
    ) in text
