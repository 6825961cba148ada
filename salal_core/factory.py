"""One factory builds the engine for the app, `--auto-oracle`, the headless CLI and the tests,
so that they cannot drift apart."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import RunConfig, to_dict, validate, with_overrides
from .data import DeviceData, ImageSet, load_dataset
from .data.load import balanced_subset
from .errors import OracleClosed, SalalError
from .events import Emit, Event, LabelsAdded, Notice, PhaseChanged, RunFinished, ignore
from .loop import ActiveLoop
from .oracle import Answer, AutoOracle, HumanOracle, Oracle
from .pool import LabelState
from .pretrain import build_model, load_pretrained, pretrain, pretrain_payload
from .runtime import (
    compile_notice,
    configure,
    cuda_oom_hint,
    resolve_device,
    seed_everything,
)
from .store import RunStore


def fan_out(*sinks: Emit) -> Emit:
    """One emit callable that feeds several sinks (the run store, then the UI or progress bars)."""

    def emit(event: Event) -> None:
        for sink in sinks:
            sink(event)

    return emit


@dataclass
class Restored:
    """What a resumed run picks up: labels, model checkpoint, round and open queries."""

    state: LabelState
    checkpoint: dict | None = None
    start_round: int = 0
    open_queries: list = field(default_factory=list)


@dataclass
class Engine:
    """A run in the making: configuration, run directory and oracle, ready to `run()`."""

    config: RunConfig
    store: RunStore
    oracle_kind: str  # "auto" or "human"
    emit: Emit
    resume: bool = False
    pretrained: Path | None = None
    oracle: Oracle | None = None
    class_names: list[str] = field(default_factory=list)
    images: ImageSet | None = None  # host copy: thumbnails for the app, ids for export
    data: DeviceData | None = None
    loop: ActiveLoop | None = None

    def run(self) -> dict[str, Any]:
        """Load, pretrain if needed, then run the loop until the budget is spent or the oracle
        closes. Everything answered is on disk whatever happens."""
        try:
            with cuda_oom_hint():
                return self._run()
        except OracleClosed:  # stopped before the loop began (loading, pretraining)
            return {"run_dir": str(self.store.dir), "stopped_early": True, "curve": []}
        finally:
            self.close()

    def close(self) -> None:
        if self.oracle is not None:
            self.oracle.close()
        self.store.close()

    def stop(self) -> None:
        """Ask a running engine, from any thread, to save and stop at its next step."""
        self._stop.set()
        if self.oracle is not None:
            self.oracle.close()

    @property
    def held_out(self) -> bool:
        """Accuracy comes from a share of the labels, because the source has no test split."""
        return self.images is not None and not self.images.has_test

    def load_images(self, emit: Emit = ignore) -> ImageSet:
        """The source through the decode cache, with the classes named on the command line."""
        images = load_dataset(self.config.data, self.config.seed, emit)
        if self.class_names:
            if images.class_names and images.class_names != list(self.class_names):
                raise SalalError(
                    f"this source names its own classes ({', '.join(images.class_names)}); "
                    "drop --classes, which is for folders without class folders"
                )
            images.class_names = list(self.class_names)
        if not images.class_names:
            raise SalalError(
                "this image folder has no class folders; name the classes with "
                "--classes cat,dog,... or --classes-file FILE"
            )
        self.class_names = list(images.class_names)
        self.images = images
        return images

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._sink = sink = self.emit

        def emit(event: Event) -> None:
            # Every phase reports often (steps, epochs, queries), so a stop lands within a step.
            if self._stop.is_set():
                raise OracleClosed()
            sink(event)

        self.emit = emit

    def _run(self) -> dict[str, Any]:
        started = time.perf_counter()
        config, emit = self.config, self.emit
        device = resolve_device(config.device)
        configure(device, config.speed)
        seed_everything(config.seed)
        emit(PhaseChanged("loading", config.data.source or "CIFAR-10 download"))
        if notice := compile_notice():
            emit(Notice(notice))
        self.load_images(emit)
        self.data = data = DeviceData(self.images, device)
        # Idempotent, so a run killed before this point still gets its items on resume.
        self.store.save_items(self.images.train.ids, self.class_names)
        if self.oracle_kind == "auto" and not self.images.has_labels:
            raise SalalError(
                "--auto-oracle needs ground-truth labels, and this source has none; "
                "label it yourself with salal-tui"
            )
        members = config.active.committee if _needs_committee(config) else 1

        restored = (
            self._restore(data.num_train) if self.resume else Restored(LabelState(data.num_train))
        )
        checkpoint = restored.checkpoint
        model = build_model(config, len(self.class_names), device, members)
        if checkpoint is not None:
            if checkpoint.get("width") != config.model.width or checkpoint.get("classes") != len(
                self.class_names
            ):
                raise SalalError(
                    f"the checkpoints in {self.store.dir} are of another model; start a new run"
                )
            model.load_state_dict(checkpoint["model"])
        else:
            self._prepare_backbone(model, data, emit)
            model.replace_head(len(self.class_names), members)

        state = restored.state
        if state.num_labeled == 0:  # new, or killed before its initial labels were written
            self._initial_labels(state)
        self.oracle = self.oracle or AutoOracle(data.train_labels.cpu().numpy(), self.store)
        self.loop = ActiveLoop(
            config,
            data,
            model,
            self.oracle,
            state,
            emit,
            store=self.store,
            start_round=restored.start_round,
            open_queries=restored.open_queries,
            optimizer_state=checkpoint.get("optimizer") if checkpoint else None,
            curve=checkpoint.get("curve", []) if checkpoint else [],
        )
        stopped_early = False
        try:
            self.loop.run()
        except OracleClosed:
            stopped_early = True  # the person quit: every answer is already on disk
        summary = self.summary(time.perf_counter() - started, stopped_early)
        self.store.write_summary(summary)
        self._sink(RunFinished(str(self.store.dir), summary))  # delivered even after a stop
        return summary

    def _restore(self, size: int) -> Restored:
        """Labels from the journal (the truth), model from the newest readable checkpoint, and
        the queries that were asked but never answered."""
        checkpoint, path = self.store.load_checkpoint("round-")
        records = self.store.labels()
        if any(r.index >= size for r in records.values()):
            raise SalalError(
                f"{self.store.dir} does not match this data (more labels than "
                "images); pass the --data the run was started with"
            )
        state = LabelState(size)
        state.add(
            list(records),
            [r.label for r in records.values()],
            [max(r.round, 0) for r in records.values()],
        )
        open_queries = [q for q in self.store.open_queries() if q.index not in records]
        self.store.mark_consumed(list(records))
        start_round = int(checkpoint["round"]) + 1 if checkpoint is not None else 0
        where = f"from {path.name}" if path else "before the first round"
        self.emit(
            Notice(
                f"resumed {where}: {state.num_labeled} labels, "
                f"{len(open_queries)} queued, round {start_round}",
                level="info",
            )
        )
        return Restored(state, checkpoint, start_round, open_queries)

    def _prepare_backbone(self, model, data: DeviceData, emit: Emit) -> None:
        """Rotation features: from --pretrained, from this run's earlier pretraining, or fresh."""
        if self.pretrained is not None:
            payload = _load_payload(self.pretrained)
            load_pretrained(payload, self.config, model, str(self.pretrained))
            return
        payload, _ = self.store.load_checkpoint("pretrain")
        if payload is not None:
            load_pretrained(payload, self.config, model, "pretrain.pt")
            return
        generator = torch.Generator(device=data.device).manual_seed(self.config.seed)
        rot_model, results = pretrain(self.config, data, emit, generator)
        self.store.save_checkpoint("pretrain", pretrain_payload(rot_model, self.config, results))
        model.backbone.load_state_dict(rot_model.backbone.state_dict())

    def _initial_labels(self, state: LabelState) -> None:
        """The preset's initial fraction, labeled from the ground truth where there is one."""
        truth = self.images.train.labels
        count = self.config.initial_count(len(truth))
        if self.config.active.initial_fraction <= 0 or not (truth >= 0).all():
            return  # cold start: the loop asks for the first labels
        if self.config.active.class_balanced_initial:
            chosen = balanced_subset(truth, count, self.config.seed)
        else:
            rng = np.random.default_rng(self.config.seed)
            chosen = np.sort(rng.choice(len(truth), count, replace=False))
        now = time.time()
        self.store.record_answers(
            [Answer(int(i), int(truth[i]), 0, "initial", now) for i in chosen]
        )
        state.add(chosen, truth[chosen], 0)
        self.emit(
            LabelsAdded(
                0,
                tuple(int(i) for i in chosen),
                tuple(int(x) for x in truth[chosen]),
                "initial",
                state.num_labeled,
                self.config.target_count(len(truth)),
            )
        )

    def summary(self, seconds: float, stopped_early: bool) -> dict[str, Any]:
        loop = self.loop
        records = self.store.labels()
        truth = self.images.train.labels
        human = [r for r in records.values() if r.oracle == "human"]
        agreement = None
        if human and (truth >= 0).all():
            agreement = float(np.mean([truth[r.index] == r.label for r in human]))
        curve = loop.curve
        return {
            "run_dir": str(self.store.dir),
            "preset": self.config.preset,
            "acquisition": self.config.active.acquisition,
            "seed": self.config.seed,
            "oracle": self.oracle_kind,
            "train_size": loop.state.size,
            "labeled": loop.state.num_labeled,
            "target": loop.target,
            "accuracy_measured_on": loop.accuracy_source,
            "curve": curve,
            "final_test_accuracy": curve[-1]["test_accuracy"] if curve else None,
            "human_labels": len(human),
            "human_agreement_with_ground_truth": agreement,
            "stopped_early": stopped_early,
            "seconds": seconds,
            "config": to_dict(self.config),
        }


def _needs_committee(config: RunConfig) -> bool:
    from .acquire import get

    return get(config.active.acquisition).committee


def _load_payload(path: Path) -> dict:
    if not path.exists():
        raise SalalError(f"{path} does not exist; pass a pretrain.pt from an earlier run")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torn file, not a checkpoint, refused pickle
        raise SalalError(
            f"{path} is not a readable checkpoint ({exc.__class__.__name__})"
        ) from None


def build_engine(
    config: RunConfig | None,
    run_dir: Path,
    *,
    oracle: str = "auto",
    emit: Emit = ignore,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    pretrained: Path | None = None,
    class_names: list[str] | None = None,
) -> Engine:
    """Validate the configuration, open (or create) the run directory and pick the oracle.

    A fresh run takes `config`; a resumed one reads the run's own config.toml and applies only
    `overrides` (how far to go, which device). Nothing heavy happens here: data loading and
    training wait for `Engine.run()`, which the app calls in its worker thread.
    """
    if not resume:
        if config is None:
            raise ValueError("a fresh run needs a config")
        config = with_overrides(config, overrides or {})
        validate(config)
        resolve_device(config.device)  # fail now, with one line, not in a worker thread
    store = RunStore(run_dir, create=not resume)
    try:
        if resume:
            config = with_overrides(store.load_config(), overrides or {})
            validate(config)
            resolve_device(config.device)
        store.save_config(config)
    except BaseException:
        store.close()
        raise
    engine = Engine(
        config,
        store,
        oracle,
        fan_out(store.on_event, emit),
        resume,
        pretrained,
        class_names=list(class_names or []),
    )
    if oracle == "human":
        engine.oracle = HumanOracle(journal=store)
    return engine
