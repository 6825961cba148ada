"""The auto-oracle mode's show: the engine's queries with their ground-truth answers, one at a
time, at a pace `+` and `-` change. The labeling screen builds on this."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.timer import Timer

from salal_core.events import Query

from ..replay import Replay
from ..widgets import ClassList
from .answer_keys import AnswerKeys

if TYPE_CHECKING:  # the desk module builds the review screen from this package
    from ..desk import Desk


class AutoReplay(AnswerKeys):
    """Replays the auto oracle's answers on the labeling screen."""

    desk: Desk
    auto: bool
    replay: Replay
    replay_timer: Timer | None

    def _show(self, query: Query | None, answer: int | None = None) -> None:
        """Draw `query` with its ground-truth `answer` (the labeling screen's)."""
        raise NotImplementedError

    def _progress(self) -> None:
        """Redraw the progress line (the labeling screen's)."""
        raise NotImplementedError

    def _restart_timer(self) -> None:
        if self.replay_timer is not None:
            self.replay_timer.stop()
        self.replay_timer = self.set_interval(self.replay.interval, self._replay_next)

    def _replay_next(self) -> None:
        query = self.replay.next()
        if query is None:
            return
        truth = self.desk.truth(query.index)
        self._show(query, answer=truth)
        self.query_one(ClassList).mark(truth)
        self._progress()

    def action_faster(self) -> None:
        self.replay.faster()
        self._speed()

    def action_slower(self) -> None:
        self.replay.slower()
        self._speed()

    def _speed(self) -> None:
        if not self.auto:
            return
        self._restart_timer()
        self._message(f"showing an image every {self.replay.delay:.2f} s")
