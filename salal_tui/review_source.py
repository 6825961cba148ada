"""Where a review's labels come from and where its corrections go: the run's own files
(`salal-tui --review RUN_DIR`, a stopped run), or the service of a run this app labels (ctrl+r:
the service works out the order and journals each correction, as it does every answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from salal_core.data.load import cache_folder
from salal_core.run.contents import OpenedRun
from salal_core.run.oracle import record_correction
from salal_core.run.review import Doubt, doubts_apart
from salal_core.run.store import RunStore
from salal_core.team.client import ServiceClient

from .originals import Originals
from .render import Pixels


@dataclass(frozen=True)
class ReviewSet:
    doubts: tuple[Doubt, ...]  # in review order
    class_names: tuple[str, ...]


class ReviewSource(Protocol):
    labeler: str  # who is reviewing: their corrections are journaled as theirs

    def load(self, only: str = "") -> ReviewSet:
        """The labels to review (`only`: that labeler's own answers); seconds of probing, so
        it runs off the event loop. A SalalError says in one line why there is no review
        (too few labels, no model, no answers of `only`)."""

    def pixels(self, doubt: Doubt) -> Pixels:
        """The doubted image, at the size the view asks for (once `load` has returned)."""

    def correct(self, doubt: Doubt, label: int) -> None:
        """Journal `label` for the doubted image; on disk when this returns (a SalalError
        says why not)."""


class RunFiles:
    """A stopped run, read and written through its own files (this app holds its lock)."""

    def __init__(self, store: RunStore, device: str, labeler: str) -> None:
        self.store, self.device, self.labeler = store, device, labeler
        self._originals: Originals | None = None

    def load(self, only: str = "") -> ReviewSet:
        doubts = doubts_apart(self.store.dir, self.device, only)
        run = OpenedRun.read(self.store.dir)  # from the decode cache the review just warmed
        self._originals = Originals(run.load_images().images, cache_folder(run.config.data))
        return ReviewSet(tuple(doubts), tuple(self._originals.images.class_names))

    def pixels(self, doubt: Doubt) -> Pixels:
        assert self._originals is not None, "pixels before load"
        return self._originals.pixels(doubt.position)

    def correct(self, doubt: Doubt, label: int) -> None:
        record_correction(self.store, doubt.position, doubt.item, label, self.labeler)


class ServedRun:
    """A run its service holds: the order, the images and the corrections go over the socket,
    and each correction is journaled as this labeler's."""

    def __init__(self, client: ServiceClient, item_pixels: Callable[[int], Pixels]) -> None:
        self.client, self.item_pixels = client, item_pixels
        self.labeler = client.name

    def load(self, only: str = "") -> ReviewSet:
        ready = self.client.review(only)
        return ReviewSet(ready.doubts, ready.class_names)

    def pixels(self, doubt: Doubt) -> Pixels:
        return self.item_pixels(doubt.item)

    def correct(self, doubt: Doubt, label: int) -> None:
        self.client.correct(doubt.item, label)
