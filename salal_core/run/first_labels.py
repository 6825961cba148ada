"""A new run's first labels: the ground truth's initial fraction, or, for a person starting
from nothing, seeded samples asked before and all through pretraining, so nobody waits for it."""

from __future__ import annotations

from salal_core.config import RunConfig
from salal_core.data import ImageSet
from salal_core.events import Emit, Event, LabelsAdded, Notice, QueryReady
from salal_core.run.labels import LabelState, RunItems, initial_answers, sample_queries
from salal_core.run.oracle import Oracle
from salal_core.run.store import RunStore

LOW_WATER = 8  # seeded images left unanswered below which pretraining asks the next sample


def ask_while_pretraining(
    config: RunConfig,
    store: RunStore,
    oracle: Oracle | None,
    images: ImageSet,
    items: RunItems,
    state: LabelState,
    emit: Emit,
) -> Emit:
    """A person starting from zero labels never waits for pretraining: a seeded sample is
    asked before it begins, and another whenever fewer than LOW_WATER are left unanswered,
    until the backbone exists; the loop takes every answer as its first labels. Returns the
    sink pretraining reports to (its progress events are when the next sample is asked)."""
    truth_starts = config.active.initial_fraction > 0 and images.has_labels
    if oracle is None or state.num_labeled or truth_starts or store.open_queries():
        return emit  # the ground truth answers at once; labels or questions exist already
    person = oracle
    asked: set[int] = set()

    def ask() -> None:
        room = config.target_count(state.size) - len(asked)  # never past the label budget
        queries = sample_queries(config, items, state, len(images.class_names), asked)[:room]
        if not queries:
            return  # every image the budget allows has been asked
        asked.update(q.index for q in queries)
        store.save_queries(queries)  # journaled before anyone can answer them
        person.ask(queries)
        emit(QueryReady(0, tuple(queries)))

    def during_pretraining(event: Event) -> None:
        emit(event)
        if person.unanswered() < LOW_WATER:
            ask()

    ask()
    return during_pretraining


def label_initial_fraction(
    config: RunConfig,
    store: RunStore,
    emit: Emit,
    images: ImageSet,
    items: RunItems,
    state: LabelState,
) -> None:
    """The preset's initial fraction, labeled from the ground truth where there is one."""
    answers = initial_answers(config, images.train.labels, items)
    if not answers:
        return  # cold start: the loop asks for the first labels
    store.record_answers(answers)
    state.add([a.index for a in answers], [a.label for a in answers], 0)
    if config.active.label_noise:
        flipped = round(config.active.label_noise * len(answers))
        emit(Notice(f"--label-noise: {flipped} of the initial labels are wrong on purpose"))
    emit(
        LabelsAdded(
            0,
            tuple(a.index for a in answers),
            tuple(a.label for a in answers),
            "initial",
            state.num_labeled,
            config.target_count(state.size),
        )
    )
