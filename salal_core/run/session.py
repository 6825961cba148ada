"""A run held while an engine works on it: its lock, its oracle, the images people see.

Whoever holds the run keeps a session for the whole time it runs (the run's service, the
headless CLI, an `--auto-oracle` app): the run directory's lock, the in-process oracle where
one answers here, the images the labelers see and the configuration. The engine, in this
process or a child, works from the same run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from salal_core.config import RunConfig
from salal_core.data import ImageSet
from salal_core.run.contents import OpenedRun
from salal_core.run.oracle import HumanOracle
from salal_core.run.store import RunStore
from salal_core.run.summary import OracleKind


@dataclass(frozen=True)
class RunRequest:
    """How a run was asked for: enough for another process to build the same engine."""

    run_dir: Path
    oracle: OracleKind
    resume: bool
    class_names: tuple[str, ...]  # from --classes, for a folder without class folders
    labels_file: Path | None = None  # --labels: imported once the run knows its images
    notices: tuple[str, ...] = ()  # said in the run's log when the engine starts


class SessionImages:
    """The images the app draws and the ground truth it shows, read from the decode cache once
    the engine has loaded the source (it decodes first, so this is the fast, warm read)."""

    def __init__(self, config: RunConfig, class_names: Sequence[str], store: RunStore) -> None:
        self._config, self._class_names, self._store = config, tuple(class_names), store
        self._images: ImageSet | None = None
        self._positions: dict[int, int] = {}  # item -> position, for the run's own load

    @property
    def loaded(self) -> ImageSet | None:
        return self._images

    def position_of(self, item: int) -> int | None:
        """Where the run's item `item` is in the images `load` brought; None before then, or
        if that load lacks it."""
        return self._positions.get(item)

    def provide(self, images: ImageSet) -> None:
        """Images from elsewhere: an app driven by scripted events (the snapshot tests)."""
        self._images = images

    def load(self) -> ImageSet:
        """The same positions the engine computes with: the run opened the same way."""
        if self._images is None:
            run = OpenedRun.of_store(self._store, self._config, self._class_names)
            matched = run.load_images()
            self._images, self._positions = matched.images, matched.positions()
        return self._images


class Session:
    def __init__(
        self, config: RunConfig, store: RunStore, request: RunRequest, oracle: HumanOracle | None
    ) -> None:
        self.config, self.store, self.request, self.oracle = config, store, request, oracle
        self.images = SessionImages(config, request.class_names, store)

    @property
    def run_dir(self) -> Path:
        return self.store.dir

    def close(self) -> None:
        if self.oracle is not None:
            self.oracle.close()
        self.store.close()
