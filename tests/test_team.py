"""A team on one run, through a real `salal-core serve`: two labelers at once, a labeler
killed, the service killed, bad frames, and a peer the run is not shared with."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from team_driver import Labeler, Truth, kill_service, new_run, start_service

from helpers import CLASSES, photo_archive
from salal_core.config import RunConfig, with_overrides
from salal_core.data.load import read_source
from salal_core.errors import SalalError
from salal_core.events import (
    DataLoaded,
    Event,
    LabeledCount,
    LabelsAdded,
    Query,
    QueryReady,
    RoundEnded,
)
from salal_core.run.oracle import Answer
from salal_core.run.session import SessionImages
from salal_core.run.store import RunStore
from salal_core.run.summary import RunSummary
from salal_core.team.client import Refusal, ServiceClient
from salal_core.team.endpoint import Admission
from salal_core.team.frames import MAX_FRAME, read_frame
from salal_core.team.labelers import user_name
from salal_core.team.leases import TeamQueue
from salal_core.team.messages import CODEC, Problem
from salal_core.team.service import RunService

TIMEOUT = 180.0


def journal(run: Path) -> list[tuple[str, int, str]]:
    store = RunStore(run, create=False, lock=False)
    rows = [(r.kind, r.item, r.labeler) for r in store.journal_rows() if r.labeler]
    store.close()
    return rows


def wait(labelers: list[Labeler]) -> None:
    for labeler in labelers:
        labeler.join(TIMEOUT)
        assert not labeler.is_alive(), f"{labeler.labeler} never finished"
        assert labeler.error is None, labeler.error


def test_two_labelers_at_once_never_share_an_image_and_bad_frames_hurt_nobody(
    tmp_path: Path,
) -> None:
    run, args = new_run(tmp_path)
    log = tmp_path / "serve.log"
    proc = start_service(run, *args, log=log)
    try:
        with socket.socket(socket.AF_UNIX) as raw:  # garbage first: the service stays up
            raw.connect(str(run / "salal.sock"))
            raw.sendall(struct.pack(">I", 9) + b"\x00garbage!")
            reply = read_frame(raw)
            assert reply is not None and isinstance(CODEC.decode(reply), Problem)
            long_number = b'{"v": 1, "type": "Hello", "name": ' + b"9" * 5000 + b"}"
            for body in (b"[" * 100_000, long_number):
                raw.sendall(struct.pack(">I", len(body)) + body)
                reply = read_frame(raw)  # too deep, too long a number: a frame error all the same
                assert reply is not None and "not JSON" in CODEC.decode(reply).reason
            raw.sendall(struct.pack(">I", MAX_FRAME + 1))
            reply = read_frame(raw)
            assert reply is not None and "at most" in CODEC.decode(reply).reason
            assert read_frame(raw) is None  # that connection alone is closed
        eve = ServiceClient(run, "eve")  # well-typed answers, of a class the run lacks
        eve.connect()
        item = eve.wait_for_queries(TIMEOUT)[0].item
        for label in (999, -5):
            with pytest.raises(Refusal, match=f"class {label} is not one of this run's 4"):
                eve.give([(item, label)])
        eve.close()
        truth = Truth(run, sorted(CLASSES))
        labelers = [Labeler(run, name, truth) for name in ("ana", "ben")]
        for labeler in labelers:
            labeler.start()
        wait(labelers)
        assert proc.wait(TIMEOUT) == 0  # the run ended and everybody left
    finally:
        if proc.poll() is None:
            kill_service(proc)
    ana, ben = labelers
    assert ana.acknowledged and ben.acknowledged
    assert not ana.seen & ben.seen  # no image was asked of both
    rows = journal(run)
    assert Counter(item for kind, item, _ in rows if kind == "label").most_common(1)[0][1] == 1
    for labeler in labelers:
        mine = [item for kind, item, who in rows if kind == "label" and who == labeler.labeler]
        assert mine == [item for item, _ in labeler.acknowledged]  # each once, as acknowledged
    text = log.read_text()
    assert "a bad frame" in text and "not JSON" in text and "Traceback" not in text
    assert "the run has finished" in text and "0 images answered more than once" in text
    summary = RunSummary.from_json(json.loads((run / "summary.json").read_text()))
    counts = {c.labeler: c.answers for c in summary.agreement.labelers}
    assert counts == {x.labeler: len(x.acknowledged) for x in labelers}  # the summary says who
    assert summary.agreement.overlapping == 0 and summary.agreement.pairs[0].images == 0


def client_script(run: Path) -> str:
    return (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from salal_core.team.client import ServiceClient\n"
        f"c = ServiceClient(Path({str(run)!r}), 'cy')\n"
        "c.connect()\n"
        "print(' '.join(str(q.item) for q in c.wait_for_queries(60)), flush=True)\n"
        "time.sleep(600)\n"
    )


def test_a_labeler_killed_mid_lease_gives_its_images_back(tmp_path: Path) -> None:
    run, args = new_run(tmp_path)
    proc = start_service(run, *args, log=tmp_path / "serve.log")
    try:
        cy = subprocess.Popen(
            [sys.executable, "-c", client_script(run)], stdout=subprocess.PIPE, text=True
        )
        assert cy.stdout is not None
        held = {int(item) for item in cy.stdout.readline().split()}
        assert held
        cy.kill()  # SIGKILL: no goodbye
        cy.wait()
        truth = Truth(run, sorted(CLASSES))
        ana = Labeler(run, "ana", truth)
        ana.start()
        deadline = time.monotonic() + TIMEOUT
        while not held <= ana.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held <= ana.seen  # everything cy held came back to the queue, and to ana
        ana.stop.set()
        wait([ana])
    finally:
        kill_service(proc)
    assert all(who == "ana" for _, _, who in journal(run))  # cy answered nothing


def test_the_service_killed_while_two_type_comes_back_with_every_answer(tmp_path: Path) -> None:
    run, args = new_run(tmp_path)
    log = tmp_path / "serve.log"
    proc = start_service(run, *args, log=log)
    truth = Truth(run, sorted(CLASSES))
    labelers = [Labeler(run, name, truth, pause=0.05) for name in ("ana", "ben")]
    try:
        for labeler in labelers:
            labeler.start()
        deadline = time.monotonic() + TIMEOUT
        while sum(len(x.acknowledged) for x in labelers) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_service(proc)
        time.sleep(0.5)
        for labeler in labelers:  # each says so in one line, and keeps trying
            assert labeler.statuses[:1] == [
                "the service is gone; reconnecting… (every answer it acknowledged is saved)"
            ]
        proc = start_service(run, str(run), log=log)  # `salal-core serve RUN_DIR` resumes it
        wait(labelers)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            kill_service(proc)
    rows = journal(run)
    for labeler in labelers:
        assert "reconnected" in labeler.statuses
        mine = Counter(item for kind, item, who in rows if who == labeler.labeler)
        assert all(mine[item] == 1 for item, _ in labeler.acknowledged), (
            mine,
            labeler.acknowledged,
        )
    labels = [item for kind, item, _ in rows if kind == "label"]
    assert len(labels) == len(set(labels))  # nobody's answer is in twice


def test_with_overlap_two_an_answer_sent_while_the_service_was_down_is_kept(
    tmp_path: Path,
) -> None:
    """Ana answers an image; the service is SIGKILLed; ben answers the same image while it is
    down. `serve RUN_DIR` rebuilds the queue from the journal, and ben's answer, sent again as
    he reconnects, is journaled beside hers."""
    run, args = new_run(tmp_path, "--overlap", "2")
    log = tmp_path / "serve.log"
    proc = start_service(run, *args, log=log)
    ana, ben = ServiceClient(run, "ana"), ServiceClient(run, "ben")
    given: list[BaseException | None] = []
    try:
        ana.connect()
        ben.connect()
        item = ana.wait_for_queries(TIMEOUT)[0].item
        deadline = time.monotonic() + TIMEOUT
        while item not in {q.item for q in ben.queued()} and time.monotonic() < deadline:
            time.sleep(0.05)  # overlap 2: the same image is leased to both
        ana.give([(item, 0)])
        kill_service(proc)

        def answer() -> None:
            try:
                ben.give([(item, 1)])  # pending until a service acknowledges it
                given.append(None)
            except BaseException as exc:
                given.append(exc)

        thread = threading.Thread(target=answer)
        thread.start()
        time.sleep(0.5)
        proc = start_service(run, str(run), log=log)
        thread.join(TIMEOUT)
        assert given == [None], given
    finally:
        ana.close()
        ben.close()
        kill_service(proc)
    assert [(who, kind) for kind, x, who in journal(run) if x == item] == [
        ("ana", "label"),
        ("ben", "label"),
    ]


def service_of(
    store: RunStore,
    owner: int | None = None,
    log: Callable[[str], None] = lambda line: None,
    queue: TeamQueue | None = None,
    images: SessionImages | None = None,
    config: RunConfig | None = None,
) -> RunService:
    """A RunService on `store` without an engine, listening; `owner` the uid it admits."""
    config = config or RunConfig()
    service = RunService(
        store.dir,
        config,
        queue or TeamQueue(store),
        images or SessionImages(config, (), store),
        lambda: ("cat", "dog"),
        Admission(owner_uid=os.getuid() if owner is None else owner, group_gid=None),
        log,
    )
    service.start()
    return service


def test_a_peer_of_another_user_is_refused(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    lines: list[str] = []
    service = service_of(store, owner=os.getuid() + 1, log=lines.append)  # someone else's run
    try:
        owner = user_name(os.getuid() + 1)
        with pytest.raises(SalalError, match=f"this run belongs to {owner}; ask them for --soc"):
            ServiceClient(store.dir, "ana").connect()
        assert lines == [f"refused a connection from uid {os.getuid()} (pid {os.getpid()})"]
    finally:
        service.close()
        store.close()


def test_an_image_the_service_does_not_have_is_refused_not_waited_for(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    service = service_of(store)
    client = ServiceClient(store.dir, "ana")
    try:
        assert client.connect().class_names == ("cat", "dog")
        with pytest.raises(Refusal, match="not one of this run's images"):
            client.image(999)
    finally:
        client.close()
        service.close()
        store.close()


def test_a_joined_labeler_gets_an_archive_members_own_bytes(tmp_path: Path) -> None:
    folder, archive = photo_archive(tmp_path)
    config = with_overrides(RunConfig(), {"data.cache_dir": str(tmp_path / "cache")})
    store = RunStore(tmp_path / "run", create=True)
    images = SessionImages(config, (), store)
    images.provide(read_source(archive, 32))
    queue = TeamQueue(store)
    index = images.load().train.ids.index("photos/1.png")
    queue.ask([Query(index, 7, 0.5, 0, (0.5, 0.5), 1)])
    service = service_of(store, queue=queue, images=images, config=config)
    client = ServiceClient(store.dir, "ana")
    try:
        client.connect()
        own = (folder / "1.png").read_bytes()  # 160x120: not the model's 32x32 copy
        deadline = time.monotonic() + 30
        while client.image(7).data != own:  # the copy, until a thread has indexed the archive
            assert time.monotonic() < deadline, "the member's own bytes were never served"
            time.sleep(0.1)
    finally:
        client.close()
        service.close()
        store.close()


class Loaded:
    """The images of a restarted service's load, as far as positions go: items 0..9."""

    loaded = None

    def position_of(self, item: int) -> int | None:
        return item if item < 10 else None


def test_every_labeler_sees_the_runs_count_and_a_newcomer_sees_it_at_once(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.save_classes(["cat", "dog"])
    store.record_answers([Answer(i, i, 0, 0, "initial", 0.0) for i in range(3)])
    store.on_event(RoundEnded(2, 3, 10, 0.5, 7, 0.1, 0.2))  # a run two rounds in
    queue = TeamQueue(store)
    service = service_of(store, queue=queue, images=Loaded())  # type: ignore[arg-type]
    service.on_event(DataLoaded("drawn", 10, 0, ("cat", "dog"), 0.1, True))  # restarted
    asked = tuple(Query(i, i, 0.5, 0, (0.5, 0.5), 3) for i in range(3, 10))
    queue.ask(asked)
    service.on_event(QueryReady(3, asked))
    heard: dict[str, list[LabeledCount]] = {"ana": [], "ben": []}

    def counts(name: str) -> Callable[[Event], None]:
        return lambda e: heard[name].append(e) if isinstance(e, LabeledCount) else None

    ana, ben = (ServiceClient(store.dir, name, counts(name)) for name in ("ana", "ben"))

    def hears(name: str, count: LabeledCount) -> None:
        deadline = time.monotonic() + 10
        while heard[name][-1:] != [count]:
            assert time.monotonic() < deadline, (name, heard[name])
            time.sleep(0.02)

    try:
        ana.connect()
        hears("ana", LabeledCount(3, 2))  # at once: the journal's count, not 0 in round 0
        ben.connect()
        ana.give([(ana.wait_for_queries(10)[0].item, 1)])
        hears("ben", LabeledCount(4, 2))  # ana's answer, in ben's count too
        ana.take_back()
        hears("ben", LabeledCount(3, 2))
        item = ana.wait_for_queries(10)[0].item
        ana.give([(item, 1)])
        hears("ben", LabeledCount(4, 2))
        assert queue.collect([item]) == {item: 1}
        told = len(heard["ben"])
        service.on_event(LabelsAdded(3, (item,), (1,), "human", 4, 10))  # the engine took it
        deadline = time.monotonic() + 10
        while len(heard["ben"]) == told and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heard["ben"][told:] == [LabeledCount(4, 2)]  # said again, and counted once
    finally:
        ana.close()
        ben.close()
        service.close()
        store.close()
