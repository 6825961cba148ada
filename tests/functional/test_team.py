"""A team on one run, through a real `salal-core serve`: two labelers at once, a labeler
killed, the service killed (with overlap too), bad frames, and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from team_driver import Labeler, Truth, kill_service, new_run, start_service

from helpers import CLASSES
from salal_core.run.store import RunStore
from salal_core.run.summary import RunSummary
from salal_core.team.client import Refusal, ServiceClient
from salal_core.team.frames import MAX_FRAME, read_frame
from salal_core.team.messages import CODEC, Problem

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


def test_ctrl_c_stops_serve_and_says_how_to_carry_on(tmp_path: Path) -> None:
    """Ctrl-C reaches the terminal's whole process group, the engine starting up included:
    the service stops it, and says so, and how to carry on."""
    run, args = new_run(tmp_path)
    log = tmp_path / "serve.log"
    proc = start_service(run, *args, log=log)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal does
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            kill_service(proc)
    said = " ".join(log.read_text().split())  # as wrapped at 80 columns
    assert "stopping: the engine saves, then the service ends" in said
    assert "stopped; every answer given is saved; carry on with: salal-core serve" in said
    assert "Traceback" not in said and "unexpectedly" not in said


def test_a_second_ctrl_c_ends_serve_at_once_with_the_signals_status(tmp_path: Path) -> None:
    """The second Ctrl-C does not wait for the engine: one line, the socket off the disk, and
    the status of a process ended by SIGINT."""
    run, args = new_run(tmp_path)
    log = tmp_path / "serve.log"
    proc = start_service(run, *args, log=log)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + TIMEOUT
        while "stopping:" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(TIMEOUT) == 130
    finally:
        if proc.poll() is None:
            kill_service(proc)
        with contextlib.suppress(ProcessLookupError):  # the engine, ended with the group
            os.killpg(proc.pid, signal.SIGKILL)
    said = " ".join(log.read_text().split())
    assert "stopped at once; every answer given is saved; carry on with: salal-core serve" in said
    assert not (run / "salal.sock").exists() and "Traceback" not in said
