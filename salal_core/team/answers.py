"""What each image of the shared queue has been answered, and what the engine gets of it.

Every asked image (by position) has its labelers' answers, a label or SKIP each. The engine's
answer is the image's first label, or a skip once `overlap` labelers have all passed on it.
An image the engine has collected may still want answers (the rest of its overlap). A label
counts as waiting, for the run's labeled count, until the engine says it has taken it.

Not thread-safe: the queue (leases.py) holds its lock around every call.
"""

from __future__ import annotations

from collections.abc import Iterable

from salal_core.run.oracle import SKIP


class ImageAnswers:
    """Each asked image's answers by labeler, and the engine's answer of them (see above)."""

    def __init__(self, overlap: int) -> None:
        self.overlap = overlap
        self._given: dict[int, dict[str, int]] = {}  # position -> labeler -> label or SKIP
        self._resolved: dict[int, int] = {}  # the engine's answer, waiting to be collected
        self.collected: set[int] = set()
        self._waiting: set[int] = set()  # labeled, and not yet reported taken by the engine

    def ask(self, i: int) -> None:
        """A new question about image `i` (a skipped one asked again): no answers yet."""
        self.collected.discard(i)
        self._given[i] = {}

    def restore(self, i: int, answers: Iterable[tuple[str, int]], taken: bool) -> None:
        """Image `i` as the journal has it (rebuild.py): its answers, and whether the engine
        has taken its answer already."""
        self._given[i] = dict(answers)
        if taken:
            self.collected.add(i)
        else:
            self._resolve(i)  # every labeler it wants passed on it: a skip

    def add(self, i: int, labeler: str, label: int) -> None:
        self._given.setdefault(i, {})[labeler] = label
        self._resolve(i)

    def take_back(self, i: int, labeler: str) -> int:
        """Remove `labeler`'s answer to image `i`; returns it."""
        label = self._given[i].pop(labeler)
        self._resolve(i)
        return label

    def of(self, i: int) -> dict[str, int]:
        return self._given.get(i, {})

    def ready(self, i: int) -> bool:
        """Whether the engine may collect image `i` now."""
        return i in self._resolved

    def collect(self, i: int) -> int:
        """The engine's answer for image `i` (a label, or SKIP), now collected."""
        label = self._resolved.pop(i)
        self.collected.add(i)
        return label

    def wants_more(self, i: int) -> bool:
        """Whether image `i` still wants an answer: the engine has none, or the overlap wants
        more than it has."""
        return i not in self.collected or len(self.of(i)) < self.overlap

    def waiting_labels(self) -> int:
        """Images labeled by somebody whose labels the engine has not reported taking."""
        return len(self._waiting)

    def reported(self) -> None:
        """The engine has reported every label it collected (LabelsAdded)."""
        self._waiting -= self.collected

    def _resolve(self, i: int) -> None:
        self._resolved.pop(i, None)
        if i in self.collected:
            return
        labels = [label for label in self.of(i).values() if label != SKIP]
        if labels:
            self._resolved[i] = labels[0]
            self._waiting.add(i)
        else:
            self._waiting.discard(i)
            if len(self.of(i)) >= self.overlap:
                self._resolved[i] = SKIP
