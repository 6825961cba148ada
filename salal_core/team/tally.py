"""The run's labeled count, the same in every labeler's app, kept by the service.

The engine says how many labels it has taken (LabelsAdded, RoundEnded); the queue knows the
labels given since that it has not taken yet, everybody's. Their sum is the run's count at
this moment. A restarted service starts from the journal's labels and the last round finished,
so that a labeler joining it sees the run's count at once, not 0 until a round ends.
"""

from __future__ import annotations

import threading

from salal_core.events import Event, LabeledCount, LabelsAdded, RoundEnded
from salal_core.team.leases import TeamQueue


class Tally:
    def __init__(self, queue: TeamQueue) -> None:
        self.queue = queue
        self._lock = threading.Lock()
        self._taken = 0  # labels the engine has, as it last said
        self._round = 0

    def start_from(self, count: LabeledCount) -> None:
        """The count as the journal has it, before anybody labels through this service."""
        with self._lock:
            self._taken, self._round = count.labeled, count.round

    def hear(self, event: Event) -> bool:
        """Take the engine's own count from its event; whether the run's count moved."""
        with self._lock:
            if isinstance(event, LabelsAdded):
                self.queue.reported()
                self._taken = event.labeled
                return True
            if isinstance(event, RoundEnded):
                self._taken, self._round = event.labeled, event.round
                return True
            return False

    def now(self) -> LabeledCount:
        with self._lock:
            return LabeledCount(self._taken + self.queue.waiting_labels(), self._round)
