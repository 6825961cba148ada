"""The engine's runs in the small-folders study: which strategy chooses the labels (an arm),
and what the study reads of a run (its curve, its round times, its fine-tuned rounds and the
round each image was labeled in)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from salal_core.backbones.catalog import ROTNET
from salal_core.config import RunConfig
from salal_core.events import EpochEnded, Event, LabelsAdded, QueryReady
from salal_core.run.engine import Engine
from salal_core.run.factory import open_session
from salal_core.run.store import RunStore
from salal_core.selection import clustering

BUDGETS = (10, 20, 40, 80, 160)  # labels the curve is read at; AUBC is their mean


@dataclass(frozen=True)
class Arm:
    """One way of choosing labels and learning from them: a strategy, whether its k-means runs
    on a sample of the pool whatever the pool's size (`--sampled-kmeans`: the large-pool path,
    measured against the exact one on the same seeds), and where the features come from."""

    acquisition: str
    sampled_kmeans: bool = False
    backbone: str = ROTNET

    @property
    def name(self) -> str:
        name = f"{self.acquisition}, sampled k-means" if self.sampled_kmeans else self.acquisition
        return name if self.backbone == ROTNET else f"{name} on {self.backbone}"

    @property
    def slug(self) -> str:
        slug = f"{self.acquisition}-sampled" if self.sampled_kmeans else self.acquisition
        return slug if self.backbone == ROTNET else f"{slug}-{self.backbone}"


CLUSTERING_STRATEGIES = ("typiclust", "cluster_margin")  # those that run k-means


def arms(
    strategies: Sequence[str], sampled_kmeans: bool, backbones: Sequence[str] = (ROTNET,)
) -> list[Arm]:
    """An arm a strategy and backbone, and with `sampled_kmeans` a second for each clustering
    strategy."""
    out = [Arm(s, False, b) for b in backbones for s in strategies]
    if sampled_kmeans:
        out += [
            Arm(s, True, b) for b in backbones for s in strategies if s in CLUSTERING_STRATEGIES
        ]
    return out


@contextlib.contextmanager
def kmeans_path(arm: Arm) -> Iterator[None]:
    """Every k-means of the arm on the sampled path (the pool still has to be more than
    SAMPLE_PER_CLUSTER points a cluster), or as the engine decides."""
    exact_work = clustering.EXACT_WORK
    clustering.EXACT_WORK = 0.0 if arm.sampled_kmeans else exact_work
    try:
        yield
    finally:
        clustering.EXACT_WORK = exact_work


class Timeline:
    """Events with the time they came: a round runs from the moment its labels are in until
    its next query is ready (training, measuring, scoring, selecting)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []

    def __call__(self, event: Event) -> None:
        self.events.append((time.perf_counter(), event))

    def round_seconds(self) -> list[float]:
        out, began = [], None
        for when, event in self.events:
            if isinstance(event, LabelsAdded):  # the answers are in: the round begins
                began = when if began is None else began
            elif isinstance(event, QueryReady) and began is not None:
                out.append(when - began)
                began = None
        return out

    def fine_tuned_rounds(self) -> set[int]:
        """The rounds that fine-tuned the network: the head on frozen features reports its fit
        as one epoch, a fine-tuning round its `epochs_per_round` (more than one in the study)."""
        return {
            e.round
            for _, e in self.events
            if isinstance(e, EpochEnded) and e.phase == "finetune" and e.epochs > 1
        }


@dataclass(frozen=True)
class EngineRun:
    curve: list[tuple[int, float]]  # (labels, test accuracy) per round
    round_seconds: list[float]
    fine_tuned: set[int]  # the rounds that fine-tuned the network


def engine_run(config: RunConfig, out: Path) -> EngineRun:
    """One run of the engine, with what the study reads of it. A run on a pretrained backbone
    (which never fine-tunes) that this study finished before, its summary.json written, is
    read back instead of run again, so a study stopped part-way carries on; its round times
    were not kept, and count as unknown."""
    if config.active.epochs_per_round < 2:
        raise SystemExit("the study tells fine-tuning rounds by their epochs: use 2 or more")
    finished = out / "summary.json"
    if config.model.backbone != ROTNET and finished.exists():
        summary = json.loads(finished.read_text())
        if summary["stop_reason"] in ("budget", "pool empty"):
            curve = [(p["labeled"], p["test_accuracy"]) for p in summary["curve"]]
            return EngineRun(curve, [], set())
    timeline = Timeline()
    summary = Engine.for_session(open_session(config, out), timeline).run()
    if summary.stop_reason not in ("budget", "pool empty"):
        raise SystemExit(f"{out}: the run ended with {summary.stop_reason}: {summary.stop_detail}")
    curve = [(p.labeled, p.test_accuracy) for p in summary.curve]
    return EngineRun(curve, timeline.round_seconds(), timeline.fine_tuned_rounds())


def labeled_rounds(run: Path) -> dict[str, int]:
    """Each labeled image's digest -> the round it was labeled in."""
    store = RunStore(run, create=False, lock=False)
    try:
        digest = {s.item: s.digest for s in store.items()}
        return {digest[item]: record.round for item, record in store.labels().items()}
    finally:
        store.close()
