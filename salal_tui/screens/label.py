"""The main screen: the image, the model's guesses, the class keys, progress and live charts.

One screen, one idea: where the engine's events meet the person's keys. It runs to about 350
lines because it answers every engine event and opens the other views (zoom, grid, review).
What stands apart does: the keys that write answers and the auto-oracle's replay are its base
classes (answer_keys.py, auto_replay.py); status texts (status.py), class keys as typed
(keys.py), the grid and review are their own modules.

It renders engine events and turns key presses into oracle answers; it never waits for the
engine. In auto-oracle mode it replays the engine's queries with their ground-truth answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Static

from salal_core.errors import SalalError
from salal_core.events import Query

from ..bridge import (
    DataLoadedMessage,
    EmbeddingProgressMessage,
    EpochEndedMessage,
    LabeledCountMessage,
    LabelsAddedMessage,
    NoticeMessage,
    PhaseChangedMessage,
    PhaseStartedMessage,
    QueryReadyMessage,
    RoundEndedMessage,
    StepProgressMessage,
)
from ..desk import SKIP, Desk
from ..graphics import Drawing
from ..keys import KeyInput, KeyMap
from ..render import Pixels
from ..replay import Replay
from ..status import (
    embedding_text,
    epoch_text,
    gains_text,
    phase_text,
    seconds_left,
    step_text,
)
from ..widgets import ClassList, PhaseLine, QueryInfo, RunProgress, TrainingCharts
from ..widgets.image_pane import ImagePane
from ..widgets.panes import image_pane
from .auto_replay import AutoReplay
from .grid import GridScreen
from .help import HelpScreen
from .quit import QuitScreen
from .review import ReviewScreen
from .zoom import ZoomScreen

MIN_SIZE = (80, 24)


class LabelScreen(AutoReplay):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("backspace", "undo", "undo"),
        Binding("space,s", "skip", "skip"),
        Binding("enter", "zoom", "zoom"),
        Binding("g", "grid", "grid"),
        Binding("tab", "grid", show=False),  # g is a class key past 16 classes; tab is not
        Binding("ctrl+r", "review", "review"),
        Binding("plus,equals_sign", "faster", "faster"),
        Binding("minus", "slower", "slower"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        desk: Desk,
        auto: bool,
        keys_file: Path | None = None,
        drawing: Drawing = "blocks",
    ) -> None:
        """`keys_file`: a person's own key map (--keys), read once the class names are known;
        `drawing`: how images are drawn (graphics.py)."""
        super().__init__()
        self.desk, self.auto, self.keys_file = desk, auto, keys_file
        self.drawing = drawing
        self.oracle = desk.oracle
        self.class_names: list[str] = []
        self.typing = KeyInput(KeyMap(()))  # class keys as typed, two-key codes included
        self.shown: Query | None = None
        self.engine_labeled = 0
        self.run_labeled: int | None = None  # the run's count, from its service, once told
        self.target = 0
        self.round = 0
        self.origin = ""
        self.gains: list[float] = []  # accuracy each of the last rounds added
        self.kappa = math.nan  # how much the last round's predictions moved
        self.head_input = ""  # what the last round's head read
        self.phase_clock = (time.monotonic(), 0)  # the training phase's start, and its steps
        self.replay = Replay()  # auto mode: the latest queries, shown one at a time
        self.replay_timer = None
        self.grid: GridScreen | None = None  # the queue as a grid, while it is open
        # Called with a key event's timestamp once the next image is on screen (benchmarks).
        self.answer_drawn: Callable[[float], None] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            yield PhaseLine("starting…", id="phase")
            with Horizontal(id="top"):
                yield image_pane(self.drawing, id="image")
                with Vertical(id="side"):
                    yield QueryInfo(id="query")
                    yield ClassList(id="classes")
                    yield Static("", id="message")
            yield RunProgress(id="progress")
            yield TrainingCharts(id="charts")
            yield Footer()
        yield Static(
            f"salal needs a terminal of at least {MIN_SIZE[0]}×{MIN_SIZE[1]}; "
            "make this one larger.",
            id="too-small",
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Show only the keys that mean something in this mode."""
        if action in ("faster", "slower"):
            return self.auto
        if action in ("undo", "skip", "review", "grid"):
            return not self.auto
        return True

    def on_mount(self) -> None:
        if self.auto:
            self._restart_timer()

    def on_resize(self, event: events.Resize) -> None:
        small = event.size.width < MIN_SIZE[0] or event.size.height < MIN_SIZE[1]
        self.set_class(small, "too-small")

    # ---------------------------------------------------------------- engine events
    @on(DataLoadedMessage)
    def on_data_loaded(self, message: DataLoadedMessage) -> None:
        event = message.event
        self.class_names = list(event.class_names) or list(self.desk.given_classes)
        try:
            keymap = (
                KeyMap.read(self.keys_file, self.class_names)
                if self.keys_file
                else KeyMap.default(len(self.class_names))
            )
        except SalalError as exc:
            self.post_message(self.KeysRefused(str(exc)))
            return
        self.typing = KeyInput(keymap)
        self.query_one(ClassList).show_classes(self.class_names, keymap)
        # The target is known as soon as the images are: say it before any label exists.
        self.target = self.desk.config.target_count(event.train_size)
        self._phase(
            f"{event.train_size:,} images, {len(self.class_names)} classes loaded "
            f"in {event.seconds:.1f} s"
        )
        self._progress()

    @on(PhaseChangedMessage)
    def on_phase_changed(self, message: PhaseChangedMessage) -> None:
        self._phase(phase_text(message.event, self.oracle is not None))

    @on(EmbeddingProgressMessage)
    def on_embedding_progress(self, message: EmbeddingProgressMessage) -> None:
        self._phase(embedding_text(message.event))

    @on(PhaseStartedMessage)
    def on_phase_started(self, message: PhaseStartedMessage) -> None:
        event = message.event
        self.phase_clock = (time.monotonic(), event.epochs * event.steps_per_epoch)
        self.query_one(TrainingCharts).start(message.event, self.desk.held_out())

    @on(StepProgressMessage)
    def on_step_progress(self, message: StepProgressMessage) -> None:
        event = message.event
        started, total = self.phase_clock
        done = (event.epoch - 1) * event.steps + event.step
        left = seconds_left(time.monotonic() - started, done, total)
        self._phase(step_text(event, self.round, left))

    @on(EpochEndedMessage)
    def on_epoch_ended(self, message: EpochEndedMessage) -> None:
        self.query_one(TrainingCharts).add(message.event)
        self._phase(epoch_text(message.event))

    @on(QueryReadyMessage)
    def on_query_ready(self, message: QueryReadyMessage) -> None:
        if self.auto:
            self.replay.extend(message.event.queries)
        elif self.grid is not None:
            self.grid.queue_changed()
        elif self.shown is None or not self._still_queued(self.shown):
            self._show_current()
        self._progress()

    @on(LabelsAddedMessage)
    def on_labels_added(self, message: LabelsAddedMessage) -> None:
        event = message.event
        self.engine_labeled, self.target = event.labeled, event.target
        if event.oracle == "initial":
            self.origin = f"{len(event.indices):,} to start with, from the ground truth"
        self._progress()

    @on(RoundEndedMessage)
    def on_round_ended(self, message: RoundEndedMessage) -> None:
        event = message.event
        self.engine_labeled, self.target, self.round = event.labeled, event.target, event.round
        if not math.isnan(event.gained):
            self.gains = [*self.gains, event.gained][-3:]
        self.kappa, self.head_input = event.kappa, event.head_input
        self._progress()

    @on(LabeledCountMessage)
    def on_labeled_count(self, message: LabeledCountMessage) -> None:
        """The run's count, everybody's answers in it: what every labeler's app shows."""
        self.run_labeled, self.round = message.event.labeled, message.event.round
        self._progress()

    @on(NoticeMessage)
    def on_notice(self, message: NoticeMessage) -> None:
        event = message.event
        self._message(event.message, "yellow" if event.level == "warning" else "cyan")

    # ---------------------------------------------------------------- showing items
    def _pixels(self, index: int) -> Pixels | None:
        return self.desk.pixels(index)

    def _show(self, query: Query | None, answer: int | None = None) -> None:
        self.shown = query
        caption = "" if query is None else _caption(query)
        if query is None and not self.auto:
            caption = "no images queued: the model is choosing the next ones"
        self.query_one(ImagePane).show(
            None if query is None else self._pixels(query.index), caption
        )
        self.query_one(QueryInfo).show(
            query, self.class_names, self.desk.config.active.acquisition, answer
        )

    def _target(self) -> Query | None:
        return self.shown

    def _still_queued(self, query: Query) -> bool:
        """Whether the image is still this person's to answer (a joined labeler's lapsed
        lease takes it back)."""
        return self.oracle is None or any(q.index == query.index for q in self.oracle.queued())

    def _answered(self, query: Query, label: int) -> None:
        if label != SKIP:
            self.query_one(ClassList).mark(label)
        self._show_current()

    def _undone(self, undone: list[tuple[Query, int]]) -> None:
        self.query_one(ClassList).mark(None)
        self._show_current()

    def _queue_changed(self) -> None:
        self._show_current()

    def _show_current(self) -> None:
        self._show(self.oracle.current() if self.oracle else None)
        self._progress()
        self.call_after_refresh(self._prepare_next)

    def _prepare_next(self) -> None:
        """Between keypresses, once this frame is out: draw the next image off screen."""
        upcoming = self.oracle.queued()[1:2] if self.oracle else []
        if upcoming:
            query = upcoming[0]
            pixels = self._pixels(query.index)
            if pixels is not None:
                self.query_one(ImagePane).prepare(pixels, _caption(query))

    def _progress(self) -> None:
        pending = self.oracle.pending_answers() if self.oracle else 0
        queued = len(self.oracle.queued()) if self.oracle else len(self.replay)
        labeled = self.run_labeled
        self.query_one(RunProgress).show(
            self.engine_labeled + pending if labeled is None else labeled,
            self.target,
            self.round,
            queued,
            self.origin,
            gains_text(self.gains, self.kappa, self.head_input),
        )

    def _phase(self, text: str) -> None:
        self.query_one(PhaseLine).show(text)

    def _message(self, text: str, style: str = "") -> None:
        self.query_one("#message", Static).update(f"[{style}]{text}[/]" if style else text)

    class KeysRefused(Message):
        """The --keys file does not fit this run's classes: the app ends with its one line."""

        def __init__(self, reason: str) -> None:
            self.reason = reason
            super().__init__()

    # ---------------------------------------------------------------- zoom and review
    def action_zoom(self) -> None:
        pixels = self._pixels(self.shown.index) if self.shown is not None else None
        if self.shown is not None and pixels is not None:
            self.app.push_screen(ZoomScreen(pixels, _caption(self.shown), self.drawing))

    def action_grid(self) -> None:
        """The queue as a grid of tiles; back here with g."""
        if self.oracle is None or not self.class_names:
            return

        def closed(_: None) -> None:
            self.grid = None
            self._show_current()

        self.grid = GridScreen(
            self.oracle,
            self.class_names,
            self.typing.keymap,
            self._pixels,
            self.drawing,
            self.action_quit,
        )
        self.app.push_screen(self.grid, closed)

    def action_review(self) -> None:
        """Go over the labels so far, the most doubtful first; back with q."""
        if self.oracle is None:
            return
        self.app.push_screen(ReviewScreen(self.desk.review(), False, self.drawing))

    # ---------------------------------------------------------------- help and quit
    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    class QuitConfirmed(Message):
        """The person said yes to quitting; the app stops the engine, then exits."""

    def action_quit(self) -> None:
        def answered(quit_: bool | None) -> None:
            if quit_:
                self.post_message(self.QuitConfirmed())

        self.app.push_screen(QuitScreen(str(self.desk.run_dir), self.desk.carry_on), answered)


def _caption(query: Query) -> str:
    """What is written under an image; it also names the image in the view's cache."""
    return f"#{query.index}"
