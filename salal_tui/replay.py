"""Auto-oracle mode shows the engine's queries as they come, one at a time, at a speed the
person picks; the engine never waits for it (it keeps only the latest queries)."""

from __future__ import annotations

from collections import deque

from salal_core.events import Query

DELAYS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # seconds per image shown
# Half a second an image: watchable, and drawing stays a small share of the CPU that the
# engine process trains on.
START_DELAY = 0.5


class Replay:
    def __init__(self, keep: int = 200) -> None:
        self.queue: deque[Query] = deque(maxlen=keep)
        self._delay = DELAYS.index(START_DELAY)

    @property
    def delay(self) -> float:
        """Seconds between images, as set."""
        return DELAYS[self._delay]

    @property
    def interval(self) -> float:
        """The timer's interval: never zero, so the app still breathes at full speed."""
        return max(self.delay, 0.01)

    def faster(self) -> None:
        self._delay = max(0, self._delay - 1)

    def slower(self) -> None:
        self._delay = min(len(DELAYS) - 1, self._delay + 1)

    def extend(self, queries: tuple[Query, ...]) -> None:
        self.queue.extend(queries)

    def next(self) -> Query | None:
        return self.queue.popleft() if self.queue else None

    def __len__(self) -> int:
        return len(self.queue)
