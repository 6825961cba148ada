"""The auto-oracle mode's show: the engine's queries with their ground-truth answers, one at a
time, at a pace `+` and `-` change. The labeling screen builds on this."""

from __future__ import annotations

from textual.timer import Timer

from salal_core.events import Query
from salal_core.run.session import Session

from ..replay import Replay
from ..widgets import ClassList
from .answer_keys import AnswerKeys


class AutoReplay(AnswerKeys):
    """Replays the auto oracle's answers on the labeling screen."""

    session: Session
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
        images = self.session.images.loaded
        query = self.replay.next() if images is not None else None
        if query is None or images is None:
            return
        truth = int(images.train.labels[query.index])
        self._show(query, answer=truth if truth >= 0 else None)
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
