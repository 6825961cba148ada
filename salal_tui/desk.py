"""What the labeling screens read of the run they label, wherever it is: a run this app holds
(`LocalDesk`, its session and images on this machine: `--auto-oracle`), or a run's service this
app has joined, its private one or a served one (`JoinedDesk`: the images, the answers and the
engine's events all over the socket).

It is the app's one door into the core's run: the screens take what they need of it (the oracle's
answers, the review's doubts, the summary) from here, and never import salal_core.run or
salal_core.team themselves; only the shared vocabulary (errors, events) they import directly."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from salal_core.config import RunConfig
from salal_core.data.load import cache_folder
from salal_core.data.skipped import skipped_sentence
from salal_core.errors import SalalError
from salal_core.events import DataLoaded, Emit, Event, LabelsAdded, Notice
from salal_core.run.agreement import Agreement
from salal_core.run.labelers import login_name
from salal_core.run.oracle import SKIP, Answering, NotYours, UndoUnavailable
from salal_core.run.reference import reference_for
from salal_core.run.review import Doubt
from salal_core.run.session import Session
from salal_core.run.summary import CurvePoint, RunSummary
from salal_core.team.client import ServiceClient
from salal_core.team.joined import JoinedOracle

from .originals import Originals, load_original
from .render import Pixels
from .review_source import ReviewSource, RunFiles, ServedRun

# What the screens take of the core through this door.
__all__ = [
    "SKIP",
    "Agreement",
    "Answering",
    "CurvePoint",
    "Doubt",
    "NotYours",
    "RunSummary",
    "UndoUnavailable",
    "reference_for",
    "skipped_sentence",
]

IMAGES_KEPT = 64  # a joined labeler's fetched images, kept for redraws and the grid


def as_labeler(command: str, name: str) -> str:
    """`command` as `name` carries on with it: with their --name unless it is their login name,
    or the journal would name them otherwise."""
    return command if name == login_name() else f"{command} --name {name}"


class Desk(Protocol):
    run_dir: Path
    config: RunConfig
    oracle: Answering | None  # None: the auto oracle answers, the screen watches
    given_classes: tuple[str, ...]  # --classes, until the data's own are known
    carry_on: str  # the command that carries on after quitting

    def pixels(self, index: int) -> Pixels | None:
        """A queued image's pixels, at the size the view asks for; None before any image."""

    def truth(self, index: int) -> int | None:
        """The ground truth of an image, where this side knows it (the auto replay)."""

    def held_out(self) -> bool:
        """Whether accuracy is measured on held-out labels (no labeled test split)."""

    def review(self) -> ReviewSource:
        """The run's labels to review, the most doubtful first (ctrl+r)."""


class LocalDesk:
    """A run this app holds: its session's oracle, images and store."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.run_dir, self.config = session.run_dir, session.config
        self.oracle: Answering | None = session.oracle
        self.given_classes = session.request.class_names
        self.carry_on = f"salal-tui --resume {session.run_dir}"
        self._originals: Originals | None = None

    def pixels(self, index: int) -> Pixels | None:
        images = self.session.images.loaded
        if images is None:
            return None
        if self._originals is None or self._originals.images is not images:
            self._originals = Originals(images, cache_folder(self.config.data))
        return self._originals.pixels(index)

    def truth(self, index: int) -> int | None:
        images = self.session.images.loaded
        truth = -1 if images is None else int(images.train.labels[index])
        return truth if truth >= 0 else None

    def held_out(self) -> bool:
        images = self.session.images.loaded
        return images is not None and not images.has_test

    def review(self) -> ReviewSource:
        labeler = self.session.oracle.labeler if self.session.oracle is not None else login_name()
        return RunFiles(self.session.store, self.config.device, labeler)


class JoinedDesk:
    """A served run, joined: images come over the socket (the run's files may be another
    user's, in an archive, or on another machine behind a forwarded socket)."""

    def __init__(self, target: Path, name: str, emit: Emit, carry_on: str = "") -> None:
        """Connect to the service at `target` (a run directory, or a socket) as `name`; its
        events, and a line when the connection drops or comes back, go to `emit`. A
        SalalError says in one line why it could not. `carry_on`: the command that carries
        on after quitting (joining again, by default)."""
        self.emit = emit
        self._bytes: OrderedDict[int, bytes] = OrderedDict()
        self._items: dict[int, int] = {}  # position -> item, for every image leased to us
        self._lock = threading.Lock()
        self._has_test = True
        self._stopped = threading.Event()
        self.client = ServiceClient(target, name, self._hear, self._status)
        self.joined_oracle = JoinedOracle(self.client)
        self.oracle: Answering | None = self.joined_oracle
        welcome = self.client.connect()
        self.run_dir, self.config = Path(welcome.run_dir), welcome.config
        self.given_classes = welcome.class_names
        self.carry_on = carry_on or as_labeler(f"salal-tui --join {target}", name)

    def _hear(self, event: Event) -> None:
        """The engine's events: this side first, then the screens."""
        if isinstance(event, LabelsAdded):
            self.joined_oracle.taken(event)
        elif isinstance(event, DataLoaded):
            self._has_test = event.test_size > 0
        self.emit(event)

    def _status(self, line: str) -> None:
        self.emit(Notice(line, "info" if line == "reconnected" else "warning"))

    # ---------------------------------------------------------------- as the app's runner
    def run(self) -> RunSummary | None:
        """The engine runs in the service: wait until the person quits."""
        self._stopped.wait()
        return None

    def stop(self) -> None:
        """Leave the run: the service gives this labeler's leased images to the others."""
        self.client.close()
        self._stopped.set()

    def close(self) -> None:
        self.stop()

    def _fetch(self, item: int) -> bytes | None:
        with self._lock:
            if item in self._bytes:
                self._bytes.move_to_end(item)
                return self._bytes[item]
        try:
            data = self.client.image(item).data
        except SalalError:
            return None  # gone from our queue meanwhile, or no answer: nothing to draw
        with self._lock:
            self._bytes[item] = data
            while len(self._bytes) > IMAGES_KEPT:
                self._bytes.popitem(last=False)
        return data

    def _item(self, index: int) -> int | None:
        self._items.update((q.index, q.item) for q in self.client.queued())
        return self._items.get(index)

    def pixels(self, index: int) -> Pixels | None:
        item = self._item(index)
        return None if item is None else self.item_pixels(item)

    def item_pixels(self, item: int) -> Pixels:
        """Any of the run's images (a question, a label under review), fetched when drawn."""

        def pixels(max_width: int, max_height: int) -> np.ndarray:
            data = self._fetch(item)
            drawn = load_original(data, max_width, max_height) if data else None
            return drawn if drawn is not None else np.zeros((8, 8, 3), dtype=np.uint8)

        return pixels

    def truth(self, index: int) -> int | None:
        return None

    def held_out(self) -> bool:
        return not self._has_test

    def review(self) -> ReviewSource:
        return ServedRun(self.client, self.item_pixels)
