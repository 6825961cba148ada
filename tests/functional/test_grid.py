"""The grid: its shape at a terminal's size, where the cursor goes, and a person labeling a
round in it against a real engine (Pilot), typed answers and accepted guesses journaled apart."""

from __future__ import annotations

from pathlib import Path

from test_tui import make_app, scripted_app, settle, truth

from helpers import SIZE, TRAINING_WAIT, journal, labels_by_item, random_backbone, wait_for
from salal_core.events import Query
from salal_tui.screens import GridScreen, LabelScreen
from salal_tui.screens.grid import grid_shape, next_cursor
from salal_tui.widgets.grid_tile import TileAnswer, guess_text


def query(index: int, sure: float) -> Query:
    rest = (1 - sure) / 3
    return Query(index, index, 0.5, 0, (sure, rest, rest, rest), 1)


def test_the_grid_fills_the_terminal() -> None:
    assert grid_shape(100, 30) == (3, 2)
    assert grid_shape(200, 60) == (6, 4)
    assert grid_shape(20, 10) == (1, 1)  # never no tile at all


def test_the_cursor_goes_to_the_next_tile_that_needs_a_key() -> None:
    page = [query(0, 0.4), query(1, 0.95), query(2, 0.3), query(3, 0.97)]
    assert next_cursor(page, {}, 0, 0.9) == 2  # tile 1 is left to the accept key
    answered = {2: TileAnswer(1, "human")}
    assert next_cursor(page, answered, 2, 0.9) == 0  # wraps to the one still below the bar
    answered[0] = TileAnswer(0, "human")
    assert next_cursor(page, answered, 0, 0.9) == 1  # only guesses left: the first of them
    assert next_cursor(page, answered, 0, 0.99) == 1  # above no bar: in reading order
    assert next_cursor([], {}, 0, 0.9) == 0


async def test_a_bar_of_zero_takes_every_guess_but_never_a_cold_start(
    tmp_path: Path, synthetic_pack: Path
) -> None:
    app = scripted_app(tmp_path, synthetic_pack)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        cold = Query(0, 0, 0.0, 0, (0.1,) * 10, 0)  # asked before any model: no guess
        assert app.session.oracle is not None
        app.session.oracle.ask([cold])
        await pilot.press("g", *["minus"] * 8)
        grid = app.screen
        assert isinstance(grid, GridScreen) and grid.threshold == 0
        assert [q.index for q in grid.page] == [2, 3, 0]
        assert [q.index for q in grid._acceptable()] == [2, 3]


def test_a_tile_line_says_guess_answer_or_no_model_yet() -> None:
    names = ["cat", "dog", "emu", "fox"]
    assert guess_text(query(0, 0.95), names, 0.9, None).plain == "guess cat 95%"
    cold = Query(0, 0, 0.0, 0, (0.25,) * 4, 0)
    assert "no guess yet" in guess_text(cold, names, 0.9, None).plain
    assert guess_text(query(0, 0.95), names, 0.9, TileAnswer(1, "accepted")).plain == (
        "✓ dog  accepted"
    )


async def test_a_person_labels_a_round_in_the_grid(synthetic_pack: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # A budget the accepted guesses cannot spend: the run must not end under the keys below.
    # A backbone given, not pretrained: two seeded batches come first, and none after them.
    backbone = str(random_backbone(tmp_path / "pretrain.pt", 4))
    overrides = {"active.budget": 0.6, "model.pretrained": backbone}
    app = make_app(synthetic_pack, tmp_path / "c", out, auto=False, **overrides)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        await wait_for(pilot, lambda: screen.shown is not None)
        await pilot.press("g")
        grid = app.screen
        assert isinstance(grid, GridScreen) and grid.shape == grid_shape(*SIZE)
        await wait_for(pilot, lambda: len(grid.page) > 2)
        keys = screen.query_one("ClassList").keys

        first, second, third = grid.page[:3]
        await pilot.press("right")  # leave the first tile for later
        await pilot.press(keys[truth(app, second.index)])
        assert journal(out) == {second.index: truth(app, second.index)}  # on disk already
        assert grid.cursor == 2  # moved on by itself
        await pilot.press("backspace")
        assert journal(out) == {} and grid.cursor == 1
        await pilot.press("left")
        for tile in grid.page[:3]:  # reading order from the first tile
            await pilot.press(keys[truth(app, tile.index)])
        assert journal(out) == {q.index: truth(app, q.index) for q in (first, second, third)}

        def guessed() -> bool:
            return any(not q.cold_start for q in grid.page if q.index not in grid.answers)

        # The seeded images, asked before any model existed, have no guess: every tile typed
        # until the engine has trained on them and its own choices, with guesses, come up.
        while not guessed():
            await wait_for(pilot, lambda: grid._target() is not None or guessed(), TRAINING_WAIT)
            target = grid._target()
            if target is not None and not guessed():
                await pilot.press(keys[truth(app, target.index)])
        typed = journal(out)
        # The first seeded batch at least (round 1 trained on it), never past the second: the
        # engine's guesses may come up while the second is being typed.
        assert 8 <= len(typed) <= 16 and screen.round >= 1
        assert screen.engine_labeled >= 32 + 8  # the initial fraction, and the first batch
        await pilot.press(*["minus"] * 8)  # the bar down to 0%: every guess on the page
        take = grid._acceptable()
        assert take and "0%" in str(grid.query_one("#grid-status").render())
        await pilot.press("enter")
        accepted = labels_by_item(out, "accepted")
        assert accepted == {q.index: q.predicted for q in take}
        assert journal(out) == typed  # accepted guesses are not typed labels

        await pilot.press("tab")  # g's other key: back to one image at a time
        assert isinstance(app.screen, LabelScreen)
        await pilot.press("tab")
        assert isinstance(app.screen, GridScreen)
        await pilot.press("g")
        assert isinstance(app.screen, LabelScreen)
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert labels_by_item(out, "accepted") == accepted
