"""The person's keys on the labeling screen: a class key answers, space skips, backspace
undoes. Each answer is on disk before the next image is drawn; a disk that refuses it is one
line on screen, and the image stays. `LabelScreen` builds on this and provides what it
draws with."""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.screen import Screen

from salal_core.errors import SalalError
from salal_core.events import Query
from salal_core.run.oracle import HumanOracle, UndoUnavailable

from ..keys import KeyInput
from ..status import not_saved_text
from ..widgets import ClassList


class AnswerKeys(Screen[None]):
    """Key handling for a screen that shows one queried image at a time."""

    oracle: HumanOracle | None
    shown: Query | None  # the image on screen
    typing: KeyInput  # class keys as typed, two-key codes included
    class_names: list[str]
    # Called with a key event's timestamp once the next image is on screen (benchmarks).
    answer_drawn: Callable[[float], None] | None

    def _show_current(self) -> None:
        """Draw the oracle's current image (the labeling screen's)."""
        raise NotImplementedError

    def _message(self, text: str, style: str = "") -> None:
        """One line beside the image (the labeling screen's)."""
        raise NotImplementedError

    def on_key(self, event: events.Key) -> None:
        oracle, shown = self.oracle, self.shown
        if oracle is None or event.character is None:
            return
        outcome, label = self.typing.feed(event.character)
        if outcome == "other":
            return  # not a class key: the screen's bindings may want it
        event.stop()
        if outcome != "label" or label is None:
            wait = f"{self.typing.pending}… and the second key"
            self._message(wait if outcome == "wait" else "no class has those keys", "yellow")
            return
        if shown is None:
            self._message("nothing to label yet: the model is choosing images", "yellow")
            return
        if not self._saved(lambda: oracle.answer(shown.index, label)):  # on disk when it returns
            return
        self.query_one(ClassList).mark(label)
        self._message(f"#{shown.index} → {self.class_names[label]}")
        self._show_current()
        if self.answer_drawn is not None:
            self.call_after_refresh(self.answer_drawn, event.time)

    def action_skip(self) -> None:
        oracle, shown = self.oracle, self.shown
        if oracle is None or shown is None or not self._saved(lambda: oracle.skip(shown.index)):
            return
        self._message(f"#{shown.index} skipped: back to the pool")
        self._show_current()

    def action_undo(self) -> None:
        if self.oracle is None:
            return
        try:
            query, label = self.oracle.undo()
        except UndoUnavailable as exc:
            self._message(str(exc), "yellow")
            return
        except SalalError as exc:
            self._not_saved(exc)
            return
        was = "a skip" if label < 0 else self.class_names[label]
        self._message(f"undid #{query.index} (was {was})")
        self.query_one(ClassList).mark(None)
        self._show_current()

    def _saved(self, write: Callable[[], object]) -> bool:
        """Run a journal write; if the disk refuses it, say so and keep the image on screen."""
        try:
            write()
        except SalalError as exc:
            self._not_saved(exc)
            return False
        return True

    def _not_saved(self, exc: SalalError) -> None:
        self._message(not_saved_text(exc), "bold red")
