"""What a labeler may see of a served run beyond their own queue: any of its images (a
question, or a label under review), and its labels in review order; and which corrections
it takes. The service answers those requests from here."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from pathlib import Path

from salal_core.config import RunConfig
from salal_core.data.load import cache_folder
from salal_core.data.originals import OriginalSources
from salal_core.run.review import doubts_apart
from salal_core.run.session import SessionImages
from salal_core.team.images import own_bytes
from salal_core.team.leases import LeaseError, TeamQueue
from salal_core.team.messages import ImageBytes, Refused, ReviewReady


class RunView:
    def __init__(
        self,
        run_dir: Path,
        config: RunConfig,
        queue: TeamQueue,
        images: SessionImages,
        class_names: Callable[[], tuple[str, ...]],
    ) -> None:
        self.run_dir, self.config, self.queue = run_dir, config, queue
        self.images, self.class_names = images, class_names
        self._lock = threading.Lock()
        self._originals: OriginalSources | None = None  # each image's own bytes, once loaded

    def position(self, item: int) -> int | None:
        """Where an item is in the loaded images: a question's own, or any other's."""
        query = self.queue.query_of(item)
        return query.index if query is not None else self.images.position_of(item)

    def image(self, item: int) -> ImageBytes | Refused:
        """The image's own bytes (its file, or its archive member) where they can be read,
        else a PNG of the model's decoded copy."""
        images = self.images.loaded
        position = self.position(item)
        if images is None or position is None:
            return Refused(f"image:{item}", f"image {item} is not one of this run's images")
        with self._lock:
            if self._originals is None or self._originals.images is not images:
                self._originals = OriginalSources(images, cache_folder(self.config.data))
            originals = self._originals
        suffix, data = own_bytes(originals, position)
        return ImageBytes(item, suffix, base64.b64encode(data).decode())

    def review(self, client_id: str, only: str) -> ReviewReady:
        """The labels in review order, worked out in a process of its own from the run's
        newest round (seconds: call it off the connection's thread). A SalalError says why
        there is none (too few labels, no backbone yet)."""
        doubts = doubts_apart(self.run_dir, self.config.device, only)
        return ReviewReady(client_id, self.class_names(), tuple(doubts))

    def correctable(self, item: int) -> int:
        """The position of an image whose label may be corrected; a LeaseError says why not
        (the journal refuses a class the run lacks)."""
        position = self.position(item)
        if position is None:
            raise LeaseError(f"image {item} is not one of this run's images")
        return position
