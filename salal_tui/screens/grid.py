"""The queue as a grid: as many tiles as the terminal holds, each with its image, number and
the model's guess. Class keys label the tiles in reading order; the accept key takes the
model's guess on every tile not typed whose confidence is at the bar shown at the top; every
answer is on disk before the next tile is drawn, as on the single-image screen."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.widgets import Footer, Static

from salal_core.events import Query

from ..desk import Answering
from ..graphics import Drawing
from ..keys import KeyInput, KeyMap
from ..render import Pixels
from ..widgets.grid_tile import GridTile, TileAnswer, confidence, guess_text
from .answer_keys import AnswerKeys

TILE_MIN = (30, 12)  # columns and rows of the smallest tile worth looking at, border included
CHROME_ROWS = 3  # the status line, the message line and the footer
# The accept bar, in percent; 0 takes every guess on the page (a person who checked them all).
BAR_STEPS = (0, 30, 50, 60, 70, 80, 90, 95, 98)
DEFAULT_BAR = 90


def grid_shape(width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of tiles for a screen this size: 3x2 at 100x30, more when larger."""
    return max(1, width // TILE_MIN[0]), max(1, (height - CHROME_ROWS) // TILE_MIN[1])


def next_cursor(
    page: list[Query], answers: dict[int, TileAnswer], start: int, threshold: float
) -> int:
    """Where the cursor goes after `start`: the next tile in reading order, wrapping, that still
    needs a key (the accept key would not take it); else the next one not answered; else
    `start`."""
    order = [(start + step) % len(page) for step in range(1, len(page) + 1)] if page else []
    open_ = [i for i in order if page[i].index not in answers]
    for i in open_:
        sure = confidence(page[i])
        if sure is None or sure < threshold:
            return i
    return open_[0] if open_ else start


class GridScreen(AnswerKeys):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1, 0)", show=False),
        Binding("right", "move(1, 0)", show=False),
        Binding("up", "move(0, -1)", show=False),
        Binding("down", "move(0, 1)", show=False),
        Binding("enter", "accept", "accept guesses"),
        Binding("plus,equals_sign", "bar(1)", "bar up"),
        Binding("minus", "bar(-1)", "bar down"),
        Binding("backspace", "undo", "undo"),
        Binding("space,s", "skip", "skip"),
        Binding("g", "single", "one at a time"),
        Binding("tab,escape", "single", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        oracle: Answering,
        class_names: list[str],
        keymap: KeyMap,
        pixels: Callable[[int], Pixels | None],
        drawing: Drawing,
        quit_: Callable[[], None],
    ) -> None:
        """`pixels`: an image's pixels by position; `quit_`: the labeling screen's quit,
        asked for from here."""
        super().__init__()
        self.oracle: Answering | None = oracle
        self.class_names, self.pixels, self.drawing = class_names, pixels, drawing
        self.typing = KeyInput(keymap)
        self.quit_ = quit_
        self.answer_drawn = None
        self.shape = (0, 0)
        self.page: list[Query] = []  # the tiles' images, in reading order
        self.answers: dict[int, TileAnswer] = {}  # answers given on this page, by position
        self.cursor = 0
        self.bar = BAR_STEPS.index(DEFAULT_BAR)

    @property
    def threshold(self) -> float:
        return BAR_STEPS[self.bar] / 100

    def compose(self) -> ComposeResult:
        yield Static("", id="grid-status")
        yield Grid(id="tiles")
        yield Static("", id="grid-message")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        shape = grid_shape(event.size.width, event.size.height)
        if shape == self.shape:
            return
        self.shape = shape
        tiles = self.query_one("#tiles", Grid)
        tiles.styles.grid_size_columns, tiles.styles.grid_size_rows = shape
        tiles.remove_children()
        tiles.mount_all(GridTile(self.drawing) for _ in range(shape[0] * shape[1]))
        self.call_after_refresh(self._fill)

    # ---------------------------------------------------------------- the page
    def _tiles(self) -> list[GridTile]:
        return list(self.query(GridTile))

    def _fill(self) -> None:
        """A new page from the front of the queue."""
        tiles = self._tiles()
        queued = self.oracle.queued() if self.oracle else []
        self.page, self.answers = queued[: len(tiles)], {}
        self.cursor = next_cursor(self.page, {}, max(len(self.page) - 1, 0), self.threshold)
        for n, tile in enumerate(tiles):
            query = self.page[n] if n < len(self.page) else None
            tile.show(query, self._pixels_of(query), self._guess(n))
        self._draw_cursor()
        if not self.page:
            self._message("no images queued: the model is choosing the next ones", "yellow")
        self.call_after_refresh(self._prepare_next, queued[len(tiles) : 2 * len(tiles)])

    def _prepare_next(self, upcoming: list[Query]) -> None:
        """Between keypresses, once this page is out: build the next page's images."""
        for tile, query in zip(self._tiles(), upcoming, strict=False):
            pixels = self.pixels(query.index)
            if pixels is not None:
                tile.prepare(pixels, query)

    def queue_changed(self) -> None:
        """The engine queued more images: an empty or finished page takes them."""
        if not self.page:
            self._message("")  # no longer waiting
        if all(q.index in self.answers for q in self.page):
            self._fill()
        else:
            self._status()

    def _pixels_of(self, query: Query | None) -> Pixels | None:
        return None if query is None else self.pixels(query.index)

    def _guess(self, n: int) -> Text:
        if n >= len(self.page):
            return Text("")
        query = self.page[n]
        return guess_text(query, self.class_names, self.threshold, self.answers.get(query.index))

    def _draw_cursor(self) -> None:
        for n, tile in enumerate(self._tiles()):
            tile.set_class(n == self.cursor and n < len(self.page), "cursor")
        self._status()

    def _acceptable(self) -> list[Query]:
        """The tiles the accept key would take: not answered, guessed (a cold start has no
        guess, even at a bar of 0%), at the bar or above."""
        sure = {q.index: confidence(q) for q in self.page if q.index not in self.answers}
        return [
            q for q in self.page if (c := sure.get(q.index)) is not None and c >= self.threshold
        ]

    def _status(self) -> None:
        queued = len(self.oracle.queued()) if self.oracle else 0
        take = len(self._acceptable())
        self.query_one("#grid-status", Static).update(
            f"{queued:,} queued · [b]enter[/b] accepts the guess on {take} "
            f"tile{'' if take == 1 else 's'} at ≥ [b]{self.threshold:.0%}[/b] (+/- moves the bar)"
        )

    # ---------------------------------------------------------------- answers
    def _target(self) -> Query | None:
        if self.cursor < len(self.page) and self.page[self.cursor].index not in self.answers:
            return self.page[self.cursor]
        return None

    def _answered(self, query: Query, label: int) -> None:
        self._given({query.index: TileAnswer(label, "human")})

    def _given(self, given: dict[int, TileAnswer]) -> None:
        """Show answers just journaled; a page with every tile answered makes way for the next."""
        self.answers.update(given)
        if all(q.index in self.answers for q in self.page):
            self._fill()
            return
        self._redraw_lines(given)
        self.cursor = next_cursor(self.page, self.answers, self.cursor, self.threshold)
        self._draw_cursor()

    def _redraw_lines(self, indices: Iterable[int]) -> None:
        tiles = self._tiles()
        for n, query in enumerate(self.page):
            if query.index in indices:
                tiles[n].mark(self._guess(n))

    def _undone(self, undone: list[tuple[Query, int]]) -> None:
        taken_back = {query.index for query, _ in undone}
        on_page = [n for n, q in enumerate(self.page) if q.index in taken_back]
        if len(on_page) < len(taken_back):
            self._fill()  # an answer from an earlier page: it is back in front of the queue
            return
        for index in taken_back:
            del self.answers[index]
        self._redraw_lines(taken_back)
        self.cursor = min(on_page)
        self._draw_cursor()

    def _queue_changed(self) -> None:
        self._fill()

    def action_accept(self) -> None:
        oracle, take = self.oracle, self._acceptable()
        if oracle is None:
            return
        if not take:
            self._message(
                f"no guess on this page is at {self.threshold:.0%} or above: type their "
                "classes, or lower the bar with -",
                "yellow",
            )
            return
        pairs = [(q.index, q.predicted) for q in take]
        if not self._saved(lambda: oracle.answer_all(pairs, "accepted")):
            return
        self._message(f"accepted the model's guess on {len(take)} tiles")
        self._given({q.index: TileAnswer(q.predicted, "accepted") for q in take})

    def _message(self, text: str, style: str = "") -> None:
        self.query_one("#grid-message", Static).update(f"[{style}]{text}[/]" if style else text)

    # ---------------------------------------------------------------- moving about
    def action_move(self, dx: int, dy: int) -> None:
        columns = max(self.shape[0], 1)
        col, row = self.cursor % columns + dx, self.cursor // columns + dy
        n = row * columns + col
        if 0 <= col < columns and 0 <= n < len(self.page):
            self.cursor = n
            self._draw_cursor()

    def action_bar(self, step: int) -> None:
        self.bar = min(max(self.bar + step, 0), len(BAR_STEPS) - 1)
        self._redraw_lines({q.index for q in self.page})
        self._status()

    def action_single(self) -> None:
        self.dismiss()

    def action_quit(self) -> None:
        self.dismiss()
        self.quit_()
