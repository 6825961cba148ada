"""The auto oracle, and the human oracle's queue: answer, skip, undo, collect across threads."""

import threading
import time

import numpy as np
import pytest

from salal_core.errors import OracleClosed, SalalError
from salal_core.events import Query
from salal_core.run.oracle import SKIP, AutoOracle, HumanOracle, UndoUnavailable


class ListJournal:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def record_answers(self, answers) -> None:
        self.rows.extend(("answer", a.item, a.label, a.oracle) for a in answers)

    def record_reverts(self, items, labeler="", client_id=None) -> None:
        self.rows.extend(("revert", item) for item in items)


ITEM = 100  # item ids differ from positions: the journal must hear items


def queries(*indices: int) -> list[Query]:
    return [Query(i, i + ITEM, 1.0, 0, (0.5, 0.5), 1) for i in indices]


def test_auto_oracle_answers_from_the_ground_truth_and_journals() -> None:
    journal = ListJournal()
    oracle = AutoOracle(np.array([3, 1, 4, 1, 5]), journal)
    oracle.ask(queries(4, 2))
    assert oracle.collect([4, 2]) == {4: 5, 2: 4}
    assert journal.rows == [("answer", 104, 5, "auto"), ("answer", 102, 4, "auto")]


def test_human_answers_in_order_skip_and_undo() -> None:
    journal = ListJournal()
    oracle = HumanOracle(journal)
    oracle.ask(queries(10, 11, 12))
    oracle.ask(queries(11, 13))  # 11 is already queued: not asked twice
    assert [q.index for q in oracle.queued()] == [10, 11, 12, 13]
    oracle.answer(10, 2)
    oracle.skip(11)
    oracle.answer(12, 0)
    with pytest.raises(ValueError):
        oracle.answer(12, 1)  # answered already: no longer waiting
    [(query, label)] = oracle.undo()
    assert (query.index, label) == (12, 0)
    assert oracle.current().index == 12
    oracle.answer(12, 1)
    assert oracle.collect([10, 11, 12]) == {10: 2, 12: 1}  # the skipped one goes back
    assert journal.rows == [
        ("answer", 110, 2, "human"),
        ("answer", 111, SKIP, "human"),
        ("answer", 112, 0, "human"),
        ("revert", 112),
        ("answer", 112, 1, "human"),
    ]


class FailingJournal(ListJournal):
    """A disk that refuses writes once `fail` is set."""

    fail = False

    def record_answers(self, answers) -> None:
        if self.fail:
            raise SalalError("could not save to the run directory (disk full)")
        super().record_answers(answers)

    def record_reverts(self, items, labeler="", client_id=None) -> None:
        if self.fail:
            raise SalalError("could not save to the run directory (disk full)")
        super().record_reverts(items, labeler, client_id)


def test_a_write_the_disk_refuses_changes_nothing() -> None:
    journal = FailingJournal()
    oracle = HumanOracle(journal)
    oracle.ask(queries(1, 2))
    oracle.answer(1, 3)
    journal.fail = True
    with pytest.raises(SalalError):
        oracle.answer(2, 0)
    assert oracle.current().index == 2 and oracle.pending_answers() == 1
    with pytest.raises(SalalError):
        oracle.undo()
    assert oracle.current().index == 2  # the answer to 1 still stands
    journal.fail = False
    assert oracle.undo()[0][0].index == 1
    assert journal.rows == [("answer", 101, 3, "human"), ("revert", 101)]


def test_undo_stops_at_what_the_engine_consumed() -> None:
    oracle = HumanOracle()
    oracle.ask(queries(1, 2))
    oracle.answer(1, 0)
    oracle.collect([1])
    with pytest.raises(UndoUnavailable, match="already trained"):
        oracle.undo()
    oracle.answer(2, 1)
    assert oracle.undo()[0][0].index == 2


def test_collect_waits_for_the_person_in_another_thread() -> None:
    oracle = HumanOracle()
    oracle.ask(queries(5, 6))
    result = {}
    engine = threading.Thread(target=lambda: result.update(oracle.collect([5, 6])))
    engine.start()
    time.sleep(0.05)
    assert engine.is_alive()  # nothing answered yet
    oracle.answer(5, 1)
    oracle.answer(6, 0)
    engine.join(timeout=5)
    assert result == {5: 1, 6: 0}


def test_closing_wakes_a_waiting_engine() -> None:
    oracle = HumanOracle()
    oracle.ask(queries(1))
    errors = []

    def wait() -> None:
        try:
            oracle.collect([1])
        except OracleClosed as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    oracle.close()
    t.join(timeout=5)
    assert len(errors) == 1


def test_answers_in_any_order_accepted_together_and_undone_together() -> None:
    journal = ListJournal()
    oracle = HumanOracle(journal)
    oracle.ask(queries(1, 2, 3, 4, 5))
    oracle.answer(3, 0)  # a tile in the middle of the grid
    oracle.answer_all([(1, 1), (4, 1)], "accepted")  # one write, one undo
    assert [q.index for q in oracle.queued()] == [2, 5]
    assert journal.rows[-2:] == [("answer", 101, 1, "accepted"), ("answer", 104, 1, "accepted")]
    with pytest.raises(ValueError):
        oracle.answer_all([(2, 0), (3, 0)])  # 3 is answered: nothing of it is written
    assert len(journal.rows) == 3
    undone = oracle.undo()
    assert [(q.index, label) for q, label in undone] == [(1, 1), (4, 1)]
    assert [q.index for q in oracle.queued()] == [1, 4, 2, 5]  # back in front, in order
    assert journal.rows[-2:] == [("revert", 101), ("revert", 104)]
    oracle.answer_all([(1, 1), (4, 1), (2, 0), (5, 0)], "accepted")
    assert oracle.collect([1, 2, 3]) == {1: 1, 2: 0, 3: 0}
    undone = oracle.undo()  # what the engine took is gone from the answer; the rest is not
    assert [(q.index, label) for q, label in undone] == [(4, 1), (5, 0)]
