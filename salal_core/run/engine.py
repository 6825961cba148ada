"""One run of the engine, built whole: load, match the run's items, restore, pretrain if need
be, then the active-learning loop until the budget is spent or the oracle closes.

Everything answered is on disk whatever happens; what a run is built from (data, model, label
state, learner, loop) lives for the length of `run()`, never half-filled on the object.
"""

from __future__ import annotations

import threading
import time

import torch

from salal_core import distributed
from salal_core.backbones.catalog import ROTNET
from salal_core.backbones.weights import Weights
from salal_core.config import RunConfig
from salal_core.data import DeviceData, ImageSet
from salal_core.data.identity import item_priority
from salal_core.errors import Collapsed, OracleClosed, SalalError
from salal_core.events import (
    Emit,
    Event,
    Notice,
    PhaseChanged,
    RunFinished,
    fan_out,
)
from salal_core.run import group
from salal_core.run.agreement import measure, people_answers
from salal_core.run.checkpoint import ModelShape, RoundCheckpoint
from salal_core.run.contents import OpenedRun
from salal_core.run.first_labels import FirstQuestions, label_initial_fraction
from salal_core.run.imports import match_labels, read_labels
from salal_core.run.journal import RunJournal
from salal_core.run.labels import (
    LabelState,
    RunItems,
    agreement_with_truth,
    check_journal,
    restore,
)
from salal_core.run.loop import HOLDOUT_EVERY, ActiveLoop
from salal_core.run.oracle import AutoOracle, Oracle
from salal_core.run.plan import RunPlan, rotation_source
from salal_core.run.session import RunRequest, Session
from salal_core.run.start import backbone_weights, start_learner
from salal_core.run.store import RunStore
from salal_core.run.summary import RunSummary, StopReason, stop_sentence
from salal_core.runtime import compile_notice, cuda_oom_hint, set_up
from salal_core.selection.acquire import get as get_acquisition


def cpu_recipe_notice(config: RunConfig) -> str:
    """What a run on the cpu recipe says it is doing, from its own config."""
    limit = config.pretrain.limit
    sample = f"a {limit:,}-image sample" if limit > 0 else "every image"
    return (
        f"the cpu recipe (no GPU here): a width-{config.model.width} network, rotation "
        f"pretraining on {sample}, every image in the pool; with a GPU, --preset fast"
    )


class Engine:
    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        request: RunRequest,
        emit: Emit,
        oracle: Oracle | None = None,
    ) -> None:
        """`oracle` None answers from the ground truth (auto-oracle mode)."""
        self.config, self.store, self.request, self.oracle = config, store, request, oracle
        self._stop = threading.Event()
        self._sink = emit

    @classmethod
    def for_session(cls, session: Session, emit: Emit) -> Engine:
        """An engine in this process, on the session's run directory and oracle."""
        return cls(
            session.config,
            session.store,
            session.request,
            fan_out(session.store.on_event, emit),
            session.oracle,
        )

    def emit(self, event: Event) -> None:
        # Every phase reports often (steps, epochs, queries), so a stop lands within a step.
        if self._stop.is_set():
            raise OracleClosed()
        self._sink(event)

    def stop(self) -> None:
        """Ask a running engine, from any thread, to save and stop at its next step."""
        self._stop.set()
        if self.oracle is not None:
            self.oracle.close()

    def run(self) -> RunSummary:
        """Load, pretrain if needed, then run the loop until the budget is spent or the oracle
        closes. Everything answered is on disk whatever happens."""
        started = time.perf_counter()
        try:
            with cuda_oom_hint():
                return self._run(started)
        except OracleClosed:  # stopped before the loop began (loading, pretraining)
            return self._summary(started, "stopped", None, None, None)
        except Collapsed as exc:  # in pretraining: nothing to fine-tune
            self._sink(Notice(str(exc)))
            return self._summary(started, "collapsed", None, None, None, str(exc))
        finally:
            if self.oracle is not None:
                self.oracle.close()
            self.store.close()

    # ---------------------------------------------------------------- the run
    def _run(self, started: float) -> RunSummary:
        config, store = self.config, self.store
        device = set_up(config)
        self.emit(PhaseChanged("loading", config.data.source or "CIFAR-10 download"))
        if compiling := compile_notice():
            self.emit(Notice(compiling))
        for said in self.request.notices:
            self.emit(Notice(said))
        # The pretrained weights, held to the run's identity before anything loads.
        weights = backbone_weights(config, store) if config.model.backbone != ROTNET else None
        if config.model.backbone != ROTNET and distributed.size() > 1:
            raise SalalError(
                f"--backbone {config.model.backbone} runs on one GPU (its features are computed "
                "once and the head is a linear fit); start it without torchrun"
            )
        run = OpenedRun.of_store(store, config, self.request.class_names)
        matched = run.load_images(self.emit)
        images, items = matched.images, matched.items
        if self.oracle is None and not images.has_labels:  # `run`, `compare`, --auto-oracle
            source, classes = config.data.source, ",".join(images.class_names)
            raise SalalError(
                f"{source} has no ground-truth labels to answer from; label it yourself: "
                f"salal-tui --data {source} --classes {classes}"
            )
        if config.preset == "cpu" and config.model.backbone == ROTNET:  # once the data loaded
            self.emit(Notice(cpu_recipe_notice(config), level="info"))
        store.save_items(items.changes)  # idempotent: a run killed here resumes the same
        store.save_classes(images.class_names)
        if self.request.labels_file is not None and not store.journal_rows():
            given = read_labels(self.request.labels_file)
            store.record_answers(match_labels(given, store.items(), images.class_names))
        asked_round = store.questions.highest_round()
        check_journal(store.journal_rows(), items.known, len(images.class_names), asked_round)
        records = store.labels()  # replayed once every record is known to be sound
        for change in items.notices(set(records)):
            self.emit(change)
        state = restore(records, items)
        if state.num_labeled == 0:  # new, or stopped before its initial labels were written
            label_initial_fraction(config, store, self.emit, images, items, state)
        first = FirstQuestions(config, store, self.oracle, images, items, state)
        first.ask_saved(self.emit)  # a resumed queue is shown before any model is built
        members = (
            config.active.committee if get_acquisition(config.active.acquisition).committee else 1
        )
        shape = ModelShape(
            config.model.width,
            len(images.class_names),
            members,
            config.model.head_input,
            config.model.backbone,
        )
        checkpoint = self._round_checkpoint(len(records))
        plan = RunPlan(
            config,
            store.dir,
            group.new_token(),
            tuple(images.class_names),
            tuple(s.digest for s in run.items) or None,
            shape,
            store.checkpoints / f"{checkpoint.name}.pt" if checkpoint else None,
            rotation_source(config, store.checkpoints),
            "warn" if self.request.oracle == "human" else "stop",
        )
        with group.running(plan):  # the other ranks build the same run, and end it with us
            return self._train(
                started,
                device,
                plan,
                checkpoint,
                images,
                items,
                state,
                first,
                bool(records),
                weights,
            )

    def _train(
        self,
        started: float,
        device: torch.device,
        plan: RunPlan,
        checkpoint: RoundCheckpoint | None,
        images: ImageSet,
        items: RunItems,
        state: LabelState,
        first: FirstQuestions,
        had_labels: bool,
        weights: Weights | None,
    ) -> RunSummary:
        """Pretrain or restore, then the loop; every other rank does its share alongside."""
        config, store, shape = self.config, self.store, plan.shape
        # This rank's shard of the images on the device (all of them in a world of one).
        data = DeviceData(images, device, shard=distributed.shard())
        started_learner = start_learner(
            plan, store, images, data, checkpoint, weights, self.emit, first.while_pretraining
        )
        learner, generator = started_learner.learner, started_learner.generator
        resumed = started_learner.resumed
        for said in resumed.notices:
            self.emit(Notice(said, level="info"))
        oracle = self.oracle or AutoOracle(images.train.labels, store)
        loop = ActiveLoop(
            config,
            learner,
            oracle,
            RunJournal(store, learner, shape),
            state,
            self.emit,
            item_ids=items.ids,
            priority=item_priority(items.digests, config.seed),
            generator=generator,
            start_round=resumed.start_round,
            open_queries=first.open_questions(),
            curve=resumed.curve,
            stop_set=resumed.stop_set,
        )
        if checkpoint is not None or had_labels:
            where = f"from {checkpoint.name}" if checkpoint else "before the first round"
            self.emit(
                Notice(
                    f"resumed {where}: {state.num_labeled} labels, {loop.outstanding} queued, "
                    f"round {resumed.start_round}",
                    level="info",
                )
            )
        detail = ""
        try:
            reason: StopReason = loop.run()
        except OracleClosed:
            reason = "stopped"  # the person quit: every answer is already on disk
        except Collapsed as exc:
            reason, detail = "collapsed", str(exc)
            self._sink(Notice(detail))
        return self._summary(started, reason, loop, images, items, detail)

    # ---------------------------------------------------------------- resuming
    def _round_checkpoint(self, journaled: int) -> RoundCheckpoint | None:
        """The newest round checkpoint, checked against the run's items and its `journaled`
        labels (fewer than it trained on: the database lost some, which the run says)."""
        checkpoint = self.store.newest_round()
        if checkpoint is None:
            return None
        checkpoint.check_items([s.digest for s in self.store.items()], checkpoint.name)
        if lost := checkpoint.lost_labels(journaled):
            self.emit(Notice(lost))
        return checkpoint

    # ---------------------------------------------------------------- the end
    def _summary(
        self,
        started: float,
        reason: StopReason,
        loop: ActiveLoop | None,
        images: ImageSet | None,
        items: RunItems | None,
        detail: str = "",
    ) -> RunSummary:
        records = self.store.labels()
        human = [r for r in records.values() if r.oracle == "human"]
        accepted = [r for r in records.values() if r.oracle == "accepted"]
        agreement = accepted_agreement = None
        if images is not None and items is not None:
            agreement = agreement_with_truth(human, items, images.train.labels)
            accepted_agreement = agreement_with_truth(accepted, items, images.train.labels)
        classes = images.class_names if images is not None else self.store.class_names()
        summary = RunSummary(
            run_dir=str(self.store.dir),
            preset=self.config.preset,
            acquisition=self.config.active.acquisition,
            seed=self.config.seed,
            oracle=self.request.oracle,
            train_size=loop.state.size if loop else 0,
            labeled=loop.state.num_labeled if loop else len(records),
            target=loop.target if loop else 0,
            accuracy_source=loop.accuracy_source if loop else "test",
            holdout_every=HOLDOUT_EVERY,
            curve=tuple(loop.curve) if loop else (),
            human_labels=len(human),
            human_agreement=agreement,
            stop_reason=reason,
            stop_detail=detail or stop_sentence(reason, self.config.active.stop_when_flat),
            seconds=time.perf_counter() - started,
            config=self.config,
            accepted_labels=len(accepted),
            accepted_agreement=accepted_agreement,
            agreement=measure(people_answers(self.store.votes()), max(len(classes), 1)),
            skipped_files=tuple(images.skipped) if images is not None else (),
        )
        if loop is not None or reason == "collapsed":
            self.store.write_summary(summary.to_json())
        self._sink(RunFinished(summary))  # delivered even after a stop
        return summary
