"""What a run directory holds, read: the one way the commands, the engine and the app read it.

"Load the config, read the items, load the images, match them to the stored items" is written
once here. `OpenedRun.read` takes what the run's database says in one short read (no lock, so
it is safe beside a live run), for the offline commands; `OpenedRun.of_store` takes it through
a store its caller holds (the engine, the app). `load_images` brings the source's images
matched to the run's items by content. A new offline command is a few lines on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from salal_core.config import RunConfig
from salal_core.data import ImageSet
from salal_core.data.load import load_for_run
from salal_core.errors import SalalError
from salal_core.events import Emit, ignore
from salal_core.run import checkpoint
from salal_core.run.checkpoint import RoundCheckpoint
from salal_core.run.formats import FORMAT_VERSION
from salal_core.run.labels import RunItems
from salal_core.run.records import LabelRecord, StoredItem
from salal_core.run.store import RunStore


@dataclass(frozen=True)
class MatchedImages:
    """The source's images as this load holds them, and the run's items at their positions."""

    images: ImageSet
    items: RunItems

    def positions(self) -> dict[int, int]:
        """Item id -> position, for the items this load holds."""
        return self.items.positions()


@dataclass(frozen=True)
class OpenedRun:
    """What a run directory says: its configuration, class names, items and standing labels.

    `items` is empty for a run of an older format, which only `export` accepts. `votes` is
    each labeler's standing answer on every labeled item (run/consensus.py); `labels` the one
    that counts."""

    dir: Path
    config: RunConfig
    class_names: tuple[str, ...]
    items: tuple[StoredItem, ...]
    labels: dict[int, LabelRecord]
    votes: dict[int, tuple[LabelRecord, ...]]
    backbone_digest: str | None  # the pretrained weights' sha256 (None: rotnet)

    @classmethod
    def read(cls, run_dir: Path, any_format: bool = False) -> OpenedRun:
        """The run's database, read once and closed. `any_format` also accepts the older
        formats that can still be exported."""
        store = RunStore(run_dir, create=False, lock=False, read_only=any_format)
        try:
            if store.format != FORMAT_VERSION:
                names, labels = tuple(store.class_names()), store.labels()
                votes: dict[int, tuple[LabelRecord, ...]] = {i: (r,) for i, r in labels.items()}
                return cls(run_dir, store.load_config(), names, (), labels, votes, None)
            return cls.of_store(store, store.load_config())
        finally:
            store.close()

    @classmethod
    def of_store(
        cls, store: RunStore, config: RunConfig, class_names: Sequence[str] = ()
    ) -> OpenedRun:
        """The run through a store its caller holds open, with the configuration it runs with;
        `class_names` (from --classes) stand in where the run has none saved yet."""
        names = tuple(class_names) or tuple(store.class_names())
        votes = {item: tuple(v.record for v in vs) for item, vs in store.votes().items()}
        items, digest = tuple(store.items()), store.backbone_digest()
        return cls(store.dir, config, names, items, store.labels(), votes, digest)

    def load_images(self, emit: Emit = ignore) -> MatchedImages:
        """The source through the decode cache, matched to the run's items by digest."""
        digests = [s.digest for s in self.items] or None
        images = load_for_run(self.config, self.class_names, digests, emit)
        return MatchedImages(images, RunItems.resolve(self.items, images.train))

    def newest_round(self) -> RoundCheckpoint | None:
        """The newest readable round checkpoint; None before the first round."""
        return checkpoint.newest_round(self.dir / "checkpoints")

    def trained_round(self) -> RoundCheckpoint:
        """The newest round checkpoint, for commands that need a trained model."""
        found = self.newest_round()
        if found is None:
            raise SalalError(f"{self.dir} has no trained round yet; run or resume it first")
        return found
