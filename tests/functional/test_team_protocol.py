"""The service's pieces on their own: frames, the shared queue, the socket and who may use it."""

from __future__ import annotations

import math
import os
import socket
import struct
from pathlib import Path

import pytest

from salal_core.config import RunConfig
from salal_core.errors import OracleClosed, SalalError
from salal_core.events import Notice, Query, RoundEnded, RunFinished
from salal_core.run.agreement import measure
from salal_core.run.oracle import SKIP, ClassOutsideRun, NotYours
from salal_core.run.review import Doubt
from salal_core.run.store import RunStore
from salal_core.run.summary import CurvePoint, RunSummary
from salal_core.team import endpoint
from salal_core.team.client import Refusal
from salal_core.team.endpoint import Admission, Peer
from salal_core.team.frames import MAX_FRAME, FrameError, FrameTooLarge, read_frame
from salal_core.team.joined import JoinedOracle
from salal_core.team.leases import LeaseError, TeamQueue
from salal_core.team.messages import (
    CODEC,
    Correct,
    Forwarded,
    Give,
    Given,
    Hello,
    Leased,
    NotJournaled,
    Problem,
    ReviewReady,
    TakenBack,
    WantReview,
)

# ---------------------------------------------------------------------------- frames


def query(i: int) -> Query:
    return Query(i, 100 + i, 0.5, i % 3, (0.2, 0.3, 0.5), 1)


def round_trip(message: object) -> object:
    frame = CODEC.encode(message)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    return CODEC.decode(frame[4:])


def test_every_kind_of_message_survives_the_wire() -> None:
    summary = RunSummary(
        "run", "tiny", "entropy", 0, "human", 60, 30, 30, "test", 0,
        (CurvePoint(0, 12, 0.2, 0.5, 1.0, 0.9),), 18, None, "budget", "the label budget is spent",
        3.0, RunConfig(), agreement=measure({1: {"ana": 0, "ben": 0}, 2: {"ana": 1, "ben": 0}}, 2),
    )  # fmt: skip
    messages = [
        Hello("ana"),
        Give("c-1", (Given(101, 2), Given(102, SKIP)), "accepted"),
        Leased((query(1), query(2))),
        TakenBack("c-2", (query(1),), (2,)),
        Forwarded(Notice("held out", "info")),
        Forwarded(RunFinished(summary)),
        WantReview("c-3", "ana"),
        Correct("c-4", 101, 3),
        NotJournaled("c-5", "could not save to the run directory (disk full)"),
        ReviewReady(
            "c-3",
            ("cat", "dog"),
            (Doubt(101, 7, 0, 1, 0.2, 0.8, True, "human", "ana", (("ana", 0), ("ben", 1))),),
        ),
    ]
    for message in messages:
        assert round_trip(message) == message
    ended = round_trip(Forwarded(RoundEnded(1, 2, 3, 0.5, 4, math.nan, math.inf)))
    assert isinstance(ended, Forwarded) and isinstance(ended.event, RoundEnded)
    assert math.isnan(ended.event.gained) and ended.event.kappa == math.inf


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"type": "Hello", "name": "ana"}', "protocol version None"),
        (b'{"v": 1, "type": "Pickle", "data": "x"}', "unknown message type 'Pickle'"),
        (b'{"v": 1, "type": "Hello", "name": 7}', "Hello.name: 7 is not a"),
        (b'{"v": 1, "type": "Hello"}', "lacks 'name'"),
        (b'{"v": 1, "type": "Hello", "name": "a", "x": 1}', "has no field 'x'"),
        (b'{"v": 1, "type": "Give", "client_id": "c", "answers": [], "oracle": "auto"}', "auto"),
        (b'{"v": 1, "type": "Give", "client_id": "c", "answers": [{"item": 1}]}', "type None"),
        (
            b'{"v": 1, "type": "Give", "client_id": "c", '
            b'"answers": [{"type": "Given", "item": 1}]}',
            "Given lacks 'label'",
        ),
        (b'{"v": 1, "type": "Given", "item": true, "label": 1}', "True is not a"),
        (b'{"v": 1, "type": "Forwarded", "event": {"type": "Hello", "name": "a"}}', "unknown"),
        (b"[" * 100_000, "nested too deep"),
        (b'{"v": 1, "type": "WantImage", "item": ' + b"9" * 4_301 + b"}", "4300 digits"),
        (
            b'{"v": 1, "type": "Forwarded", "event": {"type": "RoundEnded", "round": 1, '
            b'"labeled": 2, "target": 3, "test_accuracy": 1' + b"0" * 400 + b', "pool_size": 4, '
            b'"gained": 0.1, "kappa": 0.2}}',
            "test_accuracy: 1000000000",  # past any float: said, cut short
        ),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_malformed_frame_is_a_frame_error_never_an_object(body: bytes, complaint: str) -> None:
    with pytest.raises(FrameError, match=complaint.replace("(", r"\(")):
        CODEC.decode(body)


def test_an_oversized_frame_is_refused_before_it_is_read() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(struct.pack(">I", MAX_FRAME + 1))
        with pytest.raises(FrameTooLarge):
            read_frame(ours)
        theirs.close()
        assert read_frame(ours) is None  # closed: no frame, no error


# ---------------------------------------------------------------------------- the queue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def team(tmp_path: Path, overlap: int = 1, lease: float = 60.0) -> tuple[TeamQueue, RunStore]:
    store = RunStore(tmp_path / "run", create=True)
    store.save_classes(["a", "b", "c", "d"])  # as the engine does once the data has loaded
    clock = Clock()
    queue = TeamQueue(store, overlap, lease, clock)
    queue.ask([query(i) for i in range(8)])
    return queue, store


def items(queries: list[Query]) -> list[int]:
    return [q.item for q in queries]


def test_leases_are_apart_and_come_back_when_a_labeler_leaves(tmp_path: Path) -> None:
    queue, store = team(tmp_path)
    ana, ben = queue.lease("ana", 3), queue.lease("ben", 3)
    assert items(ana) == [100, 101, 102] and items(ben) == [103, 104, 105]
    assert queue.lease("ana", 3) == []  # holds three already
    queue.give("ana", "a-1", [(100, 1)])
    assert items(queue.lease("ana", 3)) == [106]  # topped up with the next free one
    assert sorted(queue.release("ben")) == [103, 104, 105]
    assert items(queue.lease("cy", 8)) == [103, 104, 105, 107]
    with pytest.raises(LeaseError, match="not waiting for your answer"):
        queue.give("ben", "b-1", [(103, 0)])  # cy holds it now
    assert queue.collect([0]) == {0: 1}
    store.close()


def test_a_class_outside_the_run_is_refused_and_never_journaled(tmp_path: Path) -> None:
    queue, store = team(tmp_path)
    queue.lease("ana", 2)
    for label in (999, -5, 4):
        with pytest.raises(ClassOutsideRun, match=f"class {label} is not one of this run's 4"):
            queue.give("ana", f"a-{label}", [(100, label)])  # the journal's one check
    with pytest.raises(ClassOutsideRun, match=r"class 999 is not one of .* not saved"):
        queue.correct("ana", "a-5", 100, 0, 999)  # a correction in review too
    assert store.journal_rows() == []
    queue.give("ana", "a-1", [(100, 3), (101, SKIP)])  # the last class, and a skip, are fine
    assert queue.collect([0, 1]) == {0: 3}
    store.close()


def test_an_idle_labelers_leases_lapse(tmp_path: Path) -> None:
    queue, store = team(tmp_path, lease=30.0)
    queue.lease("ana", 2)
    queue._clock.now = 20.0  # type: ignore[attr-defined]
    queue.lease("ben", 2)
    assert queue.expire() == {}
    queue._clock.now = 40.0  # type: ignore[attr-defined]
    assert queue.expire() == {"ana": [100, 101]}
    assert queue.lease("ana", 2) == []  # away: nothing more until she is back
    queue.touch("ana")
    assert items(queue.lease("ana", 2)) == [100, 101]
    queue.give("ben", "b-1", [(102, 0)])  # ben is busy: his stay
    queue._clock.now = 65.0  # type: ignore[attr-defined]
    assert queue.expire() == {}
    store.close()


def test_with_overlap_two_labelers_answer_each_image_and_the_first_trains(
    tmp_path: Path,
) -> None:
    queue, store = team(tmp_path, overlap=2)
    ana, ben, cy = queue.lease("ana", 2), queue.lease("ben", 2), queue.lease("cy", 2)
    assert items(ana) == items(ben) == [100, 101] and items(cy) == [102, 103]
    queue.give("ana", "a-1", [(100, 1)])
    assert queue.collect([0]) == {0: 1}  # the first answer goes to the engine at once
    queue.give("ben", "b-1", [(100, 2)])  # the second is journaled for the majority
    assert not queue.lease("ana", 3) or 100 not in items(queue.leased("ana"))
    assert [(r.item, r.labeler, r.label) for r in store.journal_rows()] == [
        (100, "ana", 1),
        (100, "ben", 2),
    ]
    queue.give("ana", "a-2", [(101, SKIP)])
    queue.give("ben", "b-2", [(101, SKIP)])  # both passed: the engine hears a skip
    assert queue.collect([1]) == {}
    store.close()


def test_a_restarted_queue_keeps_every_answer_its_overlap_wants(tmp_path: Path) -> None:
    """Ana answers image 100 and skips 101; the service dies. Ben's answer to 100, sent while
    it was down, comes again to the queue rebuilt from the journal, and is kept: the image
    leaves the queue once it has both answers, and 101 waits for one more."""
    queue, store = team(tmp_path, overlap=2)
    store.questions.set_overlap(2)  # kept in the run, as serve --overlap does
    store.questions.save([query(i) for i in range(8)])  # as the engine journals its questions
    queue.lease("ana", 2)
    queue.lease("ben", 2)
    queue.give("ana", "a-1", [(100, 1)])
    queue.give("ana", "a-2", [(101, SKIP)])
    assert queue.collect([0]) == {0: 1}
    store.questions.mark_consumed([100])  # trained on: the engine will not ask it again
    again = TeamQueue(store, 2, 60.0, Clock())  # the restarted service's
    again.rebuild(lambda item: item - 100)
    assert {100, 101} & set(items(again.lease("ana", 8))) == set()  # she answered both
    again.give("ana", "a-1", [(100, 1)])  # her acknowledged answer, sent again: journaled once
    again.give("ben", "b-1", [(100, 2)])  # his, sent while the service was down: kept
    assert [(r.item, r.labeler, r.label) for r in store.journal_rows()] == [
        (100, "ana", 1),
        (101, "ana", SKIP),
        (100, "ben", 2),
    ]
    assert store.labels()[100].label == 1  # a tie: the earliest answer
    cy = items(again.lease("cy", 8))
    assert 100 not in cy and 101 in cy  # 100 has its two answers; 101 wants one more
    again.ask([query(i) for i in range(1, 8)])  # the engine asks its open questions again
    again.give("cy", "c-1", [(101, 3)])
    assert again.collect([1]) == {1: 3}
    store.close()


def test_a_correction_in_review_is_no_answer_toward_the_overlap_after_a_restart_either(
    tmp_path: Path,
) -> None:
    """Ana answers image 100 and the engine trains on it; ben corrects it in review. The live
    queue still wants a second answer (a correction answers no question), and so does the
    queue a restarted service rebuilds from the journal."""
    queue, store = team(tmp_path, overlap=2)
    store.questions.set_overlap(2)
    store.questions.save([query(i) for i in range(8)])
    queue.lease("ana", 1)
    queue.give("ana", "a-1", [(100, 1)])
    assert queue.collect([0]) == {0: 1}
    store.questions.mark_consumed([100])
    queue.correct("ben", "b-1", 100, 0, 2)
    assert store.labels()[100].label == 1  # the first answer counts until two are in
    assert 100 in items(queue.lease("cy", 8))
    again = TeamQueue(store, 2, 60.0, Clock())
    again.rebuild(lambda item: item - 100)
    assert 100 in items(again.lease("cy", 8))  # was: taken as answered twice
    store.close()


def test_an_overlap_set_on_a_run_labeled_alone_applies_to_the_questions_after_it(
    tmp_path: Path,
) -> None:
    """Ana labeled four images alone; the run is then served with --overlap 2 and asks two
    more, and the service restarts. The images she labeled alone are not asked again of
    somebody else (ahead of the engine's new questions); the one asked since is."""
    alone, store = team(tmp_path)
    store.questions.save([query(i) for i in range(4)])
    alone.lease("ana", 4)
    alone.give("ana", "a-1", [(100 + i, 1) for i in range(4)])
    assert alone.collect([0, 1, 2, 3]) == {0: 1, 1: 1, 2: 1, 3: 1}
    store.questions.mark_consumed([100, 101, 102, 103])
    store.questions.set_overlap(2)  # serve --overlap 2
    store.questions.set_overlap(2)  # and served again so: the overlap began before 104 still
    served = TeamQueue(store, 2, 60.0, Clock())
    store.questions.save([query(4), query(5)])
    served.ask([query(4), query(5)])
    served.lease("ana", 1)
    served.give("ana", "a-2", [(104, 0)])
    assert served.collect([4]) == {4: 0}
    store.questions.mark_consumed([104])
    again = TeamQueue(store, 2, 60.0, Clock())  # restarted
    again.rebuild(lambda item: item - 100)
    assert items(again.lease("ben", 8)) == [104, 105]  # was: 100..105, hers alone first
    store.close()


def test_undo_takes_back_ones_own_answer_only(tmp_path: Path) -> None:
    queue, store = team(tmp_path)
    queue.lease("ana", 2)
    queue.lease("ben", 2)
    queue.give("ana", "a-1", [(100, 1), (101, 3)], "accepted")
    queue.give("ben", "b-1", [(102, 0)])
    undone = queue.take_back("ana", "a-2")
    assert [(u.query.item, u.label) for u in undone] == [(100, 1), (101, 3)]
    assert items(queue.leased("ana"))[:2] == [100, 101]  # back in front of her queue
    with pytest.raises(LeaseError, match="nothing to undo"):
        queue.take_back("ana", "a-3")
    assert store.labels().keys() == {102}
    assert queue.collect([2]) == {2: 0}
    with pytest.raises(LeaseError, match="nothing to undo"):
        queue.take_back("ben", "b-2")  # trained on already
    queue.close()
    with pytest.raises(OracleClosed):
        queue.collect([0])
    with pytest.raises(LeaseError, match="the run has finished"):
        queue.give("ana", "a-4", [(100, 1)])
    store.close()


def test_a_correction_is_a_new_answer_of_its_labeler_and_a_resend_counts_once(
    tmp_path: Path,
) -> None:
    queue, store = team(tmp_path)
    queue.lease("ana", 1)
    queue.give("ana", "a-1", [(100, 1)])
    queue.correct("ben", "b-1", 100, 0, 2)
    queue.correct("ben", "b-1", 100, 0, 2)  # re-sent after a drop
    rows = [(r.item, r.label, r.labeler) for r in store.journal_rows()]
    assert rows == [(100, 1, "ana"), (100, 2, "ben")]
    assert store.labels()[100].label == 2  # with overlap 1, the latest answer counts
    store.close()


def test_an_answer_the_service_refuses_is_not_yours_and_nothing_is_waiting() -> None:
    class Refusing:
        name = "ana"

        def queued(self) -> list[Query]:
            return [query(1)]

        def give(self, answers: object, oracle: str) -> None:
            raise Refusal("image 101 is not waiting for your answer")

    oracle = JoinedOracle(Refusing())  # type: ignore[arg-type]
    with pytest.raises(NotYours, match="not waiting for your answer"):
        oracle.answer(1, 0)
    assert oracle.pending_answers() == 0


def test_a_resent_answer_is_acknowledged_again_and_counted_once(tmp_path: Path) -> None:
    queue, store = team(tmp_path)
    queue.lease("ana", 2)
    queue.give("ana", "a-1", [(100, 1)])
    queue.give("ana", "a-1", [(100, 1)])  # the reply was lost; the client sends it again
    assert len(store.journal_rows()) == 1
    assert queue.collect([0]) == {0: 1}
    store.close()


# ---------------------------------------------------------------------------- the socket


def test_admission_lets_in_the_owner_and_with_a_group_its_members() -> None:
    alone = Admission(owner_uid=1000, group_gid=None)
    assert alone.allows(Peer(1, 1000, 5)) and not alone.allows(Peer(1, 1001, 5))
    shared = Admission(owner_uid=1000, group_gid=5)
    assert shared.allows(Peer(1, 1001, 5)) and not shared.allows(Peer(1, 1001, 6))


def test_the_socket_is_private_and_a_stale_one_is_replaced(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    server, path = endpoint.listen(run)
    assert path == run / "salal.sock" and (path.stat().st_mode & 0o077) == 0
    with pytest.raises(SalalError, match="already answers"):
        endpoint.listen(run)
    server.close()  # the service died: its socket stays, and nobody answers
    server, again = endpoint.listen(run)
    assert again == path
    server.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(SalalError, match="not a socket of yours"):
        endpoint.listen(run)


def test_a_path_too_long_for_a_socket_is_pointed_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    run = tmp_path / ("d" * 60) / ("e" * 60)
    run.mkdir(parents=True)
    server, path = endpoint.listen(run)
    assert path.parent == tmp_path / "runtime" and endpoint.socket_path(run) == path
    with server, endpoint.connect(run) as conn:
        peer = endpoint.peer_of(server.accept()[0])
        assert peer.uid == os.getuid() and peer.pid == os.getpid()
        assert conn.fileno() >= 0


def test_socket_group_needs_the_socket_in_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    run = tmp_path / ("d" * 60) / ("e" * 60)  # too long a path for a socket
    run.mkdir(parents=True)
    with pytest.raises(SalalError, match="--socket-group needs the socket in"):
        endpoint.listen(run, group=True)  # the group could not reach the user's runtime folder


def test_no_service_is_one_line_saying_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(SalalError, match=r"no salal service answers .* salal-core serve"):
        endpoint.connect(tmp_path)


def test_problem_frames_are_messages_too() -> None:
    assert round_trip(Problem("x")) == Problem("x")
