"""A run's first labels: the ground truth's initial fraction, and what a person labels before
any model exists: the queue a resumed run saved, shown at once, or else seeded samples, asked
before and all through pretraining, so that nobody waits for a model."""

from __future__ import annotations

from collections.abc import Sequence

from salal_core.config import RunConfig
from salal_core.data import ImageSet
from salal_core.data.load import folder_classes_notice
from salal_core.events import Emit, Event, LabelsAdded, Notice, Query, QueryReady
from salal_core.run.labels import (
    LabelState,
    RunItems,
    initial_answers,
    sample_queries,
    still_open,
)
from salal_core.run.oracle import Oracle
from salal_core.run.store import RunStore

LOW_WATER = 8  # images left unanswered below which pretraining asks the next seeded sample


class FirstQuestions:
    """What a person (never the ground truth, which answers at once) is asked before the
    run's model exists, and the queue a resumed run saved, read here alone. The loop takes
    them all as its own open questions (`open_questions`)."""

    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        oracle: Oracle | None,
        images: ImageSet,
        items: RunItems,
        state: LabelState,
    ) -> None:
        self.config, self.store, self.person = config, store, oracle
        self.images, self.items, self.state = images, items, state
        self.saved, done = still_open(store.questions.open(), items, state)
        store.questions.mark_consumed(done)  # answered since, or gone from the source
        self.samples: list[Query] = []  # asked while pretraining
        self.asked: set[int] = set()  # positions handed to the person, saved and samples

    def ask_saved(self, emit: Emit) -> None:
        """The queue a resumed run saved, handed to the person now: before any model is
        loaded or pretrained, which takes far longer than reading the journal."""
        if self.person is not None and self.saved:
            self._hand_over(self.saved, emit)

    def open_questions(self) -> list[Query]:
        """The loop's open questions, in the order they were asked: the saved queue, then the
        samples asked while pretraining."""
        return [*self.saved, *self.samples]

    def while_pretraining(self, emit: Emit) -> Emit:
        """Before pretraining begins (start_model's hook): if nothing is queued, seeded
        samples as many batches ahead as the loop asks (keys typed ahead find an image),
        and another whenever fewer than LOW_WATER are left unanswered, until the backbone
        exists. Returns the sink pretraining reports to."""
        person = self.person
        if person is None:
            return emit

        def during_pretraining(event: Event) -> None:
            emit(event)
            if person.unanswered() < LOW_WATER:
                self._ask_sample(emit)

        if not self.asked:
            for _ in range(max(1, self.config.active.lookahead)):
                self._ask_sample(emit)
        return during_pretraining

    def _ask_sample(self, emit: Emit) -> None:
        room = self.config.target_count(self.state.size) - self.state.num_labeled
        room -= len(self.asked)  # never past the label budget
        classes = len(self.images.class_names)
        queries = sample_queries(self.config, self.items, self.state, classes, self.asked)
        if room > 0 and queries:
            self.store.questions.save(queries[:room])  # journaled before anyone can answer them
            self.samples.extend(queries[:room])
            self._hand_over(queries[:room], emit)

    def _hand_over(self, queries: Sequence[Query], emit: Emit) -> None:
        assert self.person is not None  # only a person is asked ahead of the model
        self.asked.update(q.index for q in queries)
        self.person.ask(queries)  # first: whoever hears QueryReady finds them in the oracle
        emit(QueryReady(queries[0].round, tuple(queries)))


def label_initial_fraction(
    config: RunConfig,
    store: RunStore,
    emit: Emit,
    images: ImageSet,
    items: RunItems,
    state: LabelState,
) -> None:
    """The preset's initial fraction, labeled from the ground truth where there is one. It
    needs no model, so it comes before pretraining, and a person's first questions after it.
    Where the ground truth is folder names with no train/ level, a notice says so first."""
    answers = initial_answers(config, images.train.labels, items)
    notice = folder_classes_notice(images, config.active.initial_fraction if answers else 0.0)
    if notice is not None:
        emit(notice)
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
