"""The auto oracle, and the human oracle's queue: answer, skip, undo, collect across threads."""

import threading
import time

import numpy as np
import pytest

from salal_core.errors import OracleClosed
from salal_core.events import Query
from salal_core.oracle import SKIP, AutoOracle, HumanOracle, UndoUnavailable


class ListJournal:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def record_answers(self, answers) -> None:
        self.rows.extend(("answer", a.index, a.label, a.oracle) for a in answers)

    def record_revert(self, index: int) -> None:
        self.rows.append(("revert", index))


def queries(*indices: int) -> list[Query]:
    return [Query(i, 1.0, 0, (0.5, 0.5), 1) for i in indices]


def test_auto_oracle_answers_from_the_ground_truth_and_journals() -> None:
    journal = ListJournal()
    oracle = AutoOracle(np.array([3, 1, 4, 1, 5]), journal)
    oracle.ask(queries(4, 2))
    assert oracle.collect([4, 2]) == {4: 5, 2: 4}
    assert journal.rows == [("answer", 4, 5, "auto"), ("answer", 2, 4, "auto")]


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
        oracle.answer(12, 1)  # not the item at the front any more
    query, label = oracle.undo()
    assert (query.index, label) == (12, 0)
    assert oracle.current().index == 12
    oracle.answer(12, 1)
    assert oracle.collect([10, 11, 12]) == {10: 2, 12: 1}  # the skipped one goes back
    assert journal.rows == [
        ("answer", 10, 2, "human"),
        ("answer", 11, SKIP, "human"),
        ("answer", 12, 0, "human"),
        ("revert", 12),
        ("answer", 12, 1, "human"),
    ]


def test_undo_stops_at_what_the_engine_consumed() -> None:
    oracle = HumanOracle()
    oracle.ask(queries(1, 2))
    oracle.answer(1, 0)
    oracle.collect([1])
    with pytest.raises(UndoUnavailable, match="already trained"):
        oracle.undo()
    oracle.answer(2, 1)
    assert oracle.undo()[0].index == 2


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
