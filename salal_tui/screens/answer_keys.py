"""The person's keys on a labeling screen: a class key answers, space skips, backspace
undoes. Each answer is on disk before the next image is drawn; a disk that refuses it is one
line on screen, and the image stays. The single-image screen (`LabelScreen`) and the grid
(`GridScreen`) build on this and say what a key answers and what comes after."""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.screen import Screen

from salal_core.errors import SalalError
from salal_core.events import Query

from ..desk import SKIP, Answering, NotYours, UndoUnavailable
from ..keys import KeyInput
from ..status import not_saved_text


class AnswerKeys(Screen[None]):
    """Key handling for a screen that answers queried images one key at a time."""

    oracle: Answering | None
    typing: KeyInput  # class keys as typed, two-key codes included
    class_names: list[str]
    # Called with a key event's timestamp once the next image is on screen (benchmarks).
    answer_drawn: Callable[[float], None] | None

    def _target(self) -> Query | None:
        """The image a class key answers now (None: nothing to answer yet)."""
        raise NotImplementedError

    def _answered(self, query: Query, label: int) -> None:
        """Draw what comes after `query` was answered with `label` (SKIP: skipped)."""
        raise NotImplementedError

    def _undone(self, undone: list[tuple[Query, int]]) -> None:
        """Draw the screen again with these answers taken back (their items queued in front)."""
        raise NotImplementedError

    def _queue_changed(self) -> None:
        """Draw the queue as it is now (an image on screen went to another labeler)."""
        raise NotImplementedError

    def _message(self, text: str, style: str = "") -> None:
        """One line for the person, beside or under the images."""
        raise NotImplementedError

    def on_key(self, event: events.Key) -> None:
        oracle, target = self.oracle, self._target()
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
        if target is None:
            self._message("nothing to label yet: the model is choosing images", "yellow")
            return
        if not self._saved(lambda: oracle.answer(target.index, label)):  # on disk when it returns
            return
        self._message(f"#{target.index} → {self.class_names[label]}")
        self._answered(target, label)
        if self.answer_drawn is not None:
            self.call_after_refresh(self.answer_drawn, event.time)

    def action_skip(self) -> None:
        oracle, target = self.oracle, self._target()
        if oracle is None or target is None or not self._saved(lambda: oracle.skip(target.index)):
            return
        self._message(f"#{target.index} skipped: back to the pool")
        self._answered(target, SKIP)

    def action_undo(self) -> None:
        if self.oracle is None:
            return
        try:
            undone = self.oracle.undo()
        except UndoUnavailable as exc:
            self._message(str(exc), "yellow")
            return
        except SalalError as exc:
            self._not_saved(exc)
            return
        if len(undone) == 1:
            query, label = undone[0]
            was = "a skip" if label == SKIP else self.class_names[label]
            self._message(f"undid #{query.index} (was {was})")
        else:
            self._message(f"undid {len(undone)} accepted guesses")
        self._undone(undone)

    def _saved(self, write: Callable[[], object]) -> bool:
        """Run a journal write; if the disk refuses it, say so and keep the image on screen.
        An image that is no longer this labeler's (a lapsed lease) makes way for the queue."""
        try:
            write()
        except NotYours as exc:
            self._message(str(exc), "yellow")
            self._queue_changed()
            return False
        except SalalError as exc:
            self._not_saved(exc)
            return False
        return True

    def _not_saved(self, exc: SalalError) -> None:
        self._message(not_saved_text(exc), "bold red")
