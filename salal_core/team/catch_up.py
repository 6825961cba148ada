"""What a labeler joining a served run mid-way is told first, so that its screen shows where
the run stands at once rather than after the engine's next event."""

from __future__ import annotations

import threading

from salal_core.events import (
    DataLoaded,
    EpochEnded,
    Event,
    LabeledCount,
    LabelsAdded,
    PhaseChanged,
    PhaseStarted,
    RoundEnded,
    RunFinished,
)


class CatchUp:
    """What a labeler joining mid-run needs to see where it stands: the data, the phase, the
    counts (the run's own last), this phase's epochs for the charts, and the end if the run
    is over."""

    LATEST = (
        DataLoaded, PhaseChanged, PhaseStarted, LabelsAdded, RoundEnded, LabeledCount, RunFinished
    )  # fmt: skip

    def __init__(self) -> None:
        self._latest: dict[type[Event], Event] = {}
        self._epochs: list[EpochEnded] = []
        self._lock = threading.Lock()

    def record(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, PhaseStarted):
                self._epochs = []
            if isinstance(event, EpochEnded):
                self._epochs.append(event)
            elif isinstance(event, self.LATEST):
                self._latest[type(event)] = event

    def events(self) -> list[Event]:
        with self._lock:
            latest = [self._latest[kind] for kind in self.LATEST if kind in self._latest]
            finished = [e for e in latest if isinstance(e, RunFinished)]
            rest = [e for e in latest if not isinstance(e, RunFinished)]
            return [*rest, *self._epochs, *finished]
