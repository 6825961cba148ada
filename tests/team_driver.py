"""Scripted labelers for the team tests and the overlap benchmark: `salal-core serve` in a
process of its own, and labelers that answer through the service as a person's app does; and
a service without an engine, for the tests of its parts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from helpers import ROUNDS, tiny_cli, write_image_folder
from salal_core.config import RunConfig
from salal_core.events import Event, RunFinished
from salal_core.run.session import SessionImages
from salal_core.run.store import RunStore
from salal_core.team.client import Refusal, ServiceClient
from salal_core.team.endpoint import Admission, socket_path
from salal_core.team.leases import TeamQueue
from salal_core.team.service import RunService


def new_run(tmp_path: Path, *extra: str) -> tuple[Path, list[str]]:
    folder = write_image_folder(tmp_path / "photos", per_class_train=15, per_class_test=4)
    run = tmp_path / "run"
    args = tiny_cli("serve", folder, run, tmp_path / "cache", *ROUNDS, "--budget", "0.6", *extra)
    return run, args[1:]


def start_service(run: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """`salal-core serve` as its own process (so that a test can SIGKILL it), and wait
    until its socket answers."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "salal_core.cli", "serve", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while not socket_path(run).is_socket():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"serve did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def kill_service(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the service and its engine child (its process group)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class Truth:
    """Each item's class from its file's folder (train/<class>/...), read beside the run."""

    def __init__(self, run: Path, classes: list[str]) -> None:
        self.run, self.classes = run, classes
        self.sources: dict[int, str] = {}

    def __call__(self, item: int) -> int:
        if item not in self.sources:
            store = RunStore(self.run, create=False, lock=False)
            self.sources = store.sources()
            store.close()
        return self.classes.index(Path(self.sources[item]).parent.name)


class Labeler(threading.Thread):
    """A person at a keyboard, as fast as the service lets them: the first image leased,
    answered with `answer(item)`, until the run ends or `stop` is set."""

    def __init__(
        self, run: Path, name: str, answer: Callable[[int], int], pause: float = 0.0
    ) -> None:
        super().__init__(name=f"labeler-{name}", daemon=True)
        self.run_dir, self.labeler, self.answer, self.pause = run, name, answer, pause
        self.acknowledged: list[tuple[int, int]] = []  # (item, label), once give returned
        self.seen: set[int] = set()  # every item leased to us
        self.statuses: list[str] = []
        self.refusals: list[str] = []
        self.finished = threading.Event()
        self.stop = threading.Event()
        self.client = ServiceClient(run, name, self._event, self.statuses.append)
        self.error: BaseException | None = None

    def _event(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.finished.set()

    def run(self) -> None:
        try:
            self.client.connect()
            while not (self.finished.is_set() or self.stop.is_set()):
                queued = self.client.wait_for_queries(0.2)
                self.seen.update(q.item for q in queued)
                if not queued:
                    continue
                item = queued[0].item
                label = self.answer(item)
                try:
                    self.client.give([(item, label)])
                except Refusal as exc:
                    self.refusals.append(str(exc))
                    continue
                self.acknowledged.append((item, label))
                time.sleep(self.pause)
        except BaseException as exc:  # the test reads it
            self.error = exc
        finally:
            self.client.close()


def service_of(
    store: RunStore,
    owner: int | None = None,
    group: int | None = None,
    log: Callable[[str], None] = lambda line: None,
    queue: TeamQueue | None = None,
    images: SessionImages | None = None,
    config: RunConfig | None = None,
) -> RunService:
    """A RunService on `store` without an engine, listening; `owner` the uid it admits, and
    `group` the group beside it (--socket-group)."""
    config = config or RunConfig()
    service = RunService(
        store.dir,
        config,
        queue or TeamQueue(store),
        images or SessionImages(config, (), store),
        lambda: ("cat", "dog"),
        Admission(owner_uid=os.getuid() if owner is None else owner, group_gid=group),
        log,
    )
    service.start(group is not None)
    return service
