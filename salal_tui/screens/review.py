"""The review screen: the run's labels, the most doubtful first (run/review.py), each image with
its given label and the model's guess. A class key confirms (the same class) or corrects
(another): a correction is journaled as every answer is, a new record, so the history is kept
and the next round trains on it. Space moves on; q goes back (or quits `salal-tui --review`)."""

from __future__ import annotations

from typing import ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from salal_core.errors import SalalError

from ..desk import Doubt
from ..graphics import Drawing
from ..keys import KeyMap
from ..review_source import ReviewSet, ReviewSource
from ..status import not_saved_text
from ..widgets import ClassList, PhaseLine
from ..widgets.image_pane import ImagePane
from ..widgets.panes import image_pane

# Who gave a label, in words: an accepted guess is told apart from a typed label.
GIVEN_BY = {
    "human": "typed",
    "accepted": "an accepted guess",
    "initial": "from the ground truth",
    "auto": "from the ground truth",
    "imported": "imported",
}


class ReviewScreen(Screen[None]):
    class Failed(Message):
        """The review could not be made (too few labels, no model yet): one line to say."""

        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "next", "next"),
        Binding("ctrl+o", "own", "mine / everyone's"),
        Binding("q,escape", "leave", "back"),
    ]

    def __init__(
        self,
        source: ReviewSource,
        standalone: bool = True,
        drawing: Drawing = "blocks",
        only: str = "",
    ) -> None:
        """`standalone`: salal-tui --review (q quits); otherwise opened from the labeling
        screen over a live run (q goes back; the engine takes corrections at its next round).
        `only`: one labeler's own answers (--labeler); ctrl+o goes between this person's own
        and everyone's."""
        super().__init__()
        self.source, self.standalone, self.drawing = source, standalone, drawing
        self.only = only
        self.doubts: tuple[Doubt, ...] = ()
        self.class_names: tuple[str, ...] = ()
        self.loaded = False
        self.at = 0
        self.corrected = 0
        self.keymap = KeyMap(())

    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            yield PhaseLine("scoring every label out of sample…", id="phase")
            with Horizontal(id="top"):
                yield image_pane(self.drawing, id="image")
                with Vertical(id="side"):
                    yield Static("", id="query")
                    yield ClassList(id="classes")
                    yield Static("", id="message")
            yield Footer()

    def on_mount(self) -> None:
        self.score()

    @work(thread=True, exit_on_error=False)
    def score(self) -> None:
        """Seconds of probing (in a process of its own, or the service's) and of loading, off
        the event loop: the keys never wait on either."""
        try:
            review = self.source.load(self.only)
        except SalalError as exc:
            self.app.call_from_thread(self.fail, str(exc))
            return
        self.app.call_from_thread(self.ready, review)

    def fail(self, message: str) -> None:
        if not self.standalone:  # the labeling goes on: say why, and go back to it
            self.app.notify(message, title="review", severity="warning")
            self.dismiss(None)
            return
        self.post_message(self.Failed(message))  # the review app says it and exits 2

    def action_own(self) -> None:
        """This person's own answers, or everyone's again: the order is worked out afresh."""
        self.only = "" if self.only else self.source.labeler
        self.doubts, self.loaded, self.at = (), False, 0
        whose = f"{self.only}'s answers" if self.only else "every label"
        self.query_one(PhaseLine).show(f"scoring {whose} out of sample…")
        self.score()

    def action_leave(self) -> None:
        if self.standalone:
            self.app.exit(None)
        else:
            self.dismiss(None)

    def ready(self, review: ReviewSet) -> None:
        self.doubts, self.class_names, self.loaded = review.doubts, review.class_names, True
        self.keymap = KeyMap.default(len(self.class_names))
        self.query_one(ClassList).show_classes(list(self.class_names), self.keymap)
        self.show()

    @property
    def current(self) -> Doubt | None:
        return self.doubts[self.at] if self.at < len(self.doubts) else None

    def show(self) -> None:
        doubt = self.current
        suspects = sum(d.suspect for d in self.doubts)
        self.query_one(PhaseLine).show(
            f"review · {min(self.at + 1, len(self.doubts))} of {len(self.doubts)} · "
            f"{suspects} suspect · {self.corrected} corrected"
        )
        if doubt is None or not self.loaded:
            self.query_one(ImagePane).show(None, "every label reviewed")
            self.query_one("#query", Static).update("nothing left to review: q quits")
            return
        names = self.class_names
        self.query_one(ImagePane).show(self.source.pixels(doubt), f"#{doubt.item}")
        given_by = GIVEN_BY.get(doubt.oracle, doubt.oracle)
        by = f"{given_by} by {doubt.labeler}" if doubt.labeler else given_by
        disputed = ", ".join(f"{who} {names[label]}" for who, label in doubt.disputed)
        self.query_one("#query", Static).update(
            f"[b]given[/b] {names[doubt.given]} ({doubt.p_given:.0%})   [dim]{by}[/]\n"
            f"[b]model[/b] [cyan]{names[doubt.guess]}[/] ({doubt.p_guess:.0%})"
            + ("   [yellow]suspect[/]" if doubt.suspect else "")
            + (f"\n[b yellow]disputed[/] {disputed}" if disputed else "")
        )

    def on_key(self, event: events.Key) -> None:
        doubt = self.current
        label = self.keymap.lookup(event.character or "")
        if doubt is None or label is None:
            return  # (two-key codes, past 34 classes, are the labeling screen's alone)
        event.stop()
        if label != doubt.given:
            try:
                self.source.correct(doubt, label)  # on disk before the next image
            except SalalError as exc:
                self.query_one("#message", Static).update(f"[bold red]{not_saved_text(exc)}[/]")
                return
            self.corrected += 1
            names = self.class_names
            self.query_one("#message", Static).update(
                f"#{doubt.item}: {names[doubt.given]} → {names[label]}"
            )
        self.action_next()

    def action_next(self) -> None:
        self.at += 1
        self.show()
