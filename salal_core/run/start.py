"""How a run's learner starts, on either kind of features. Rotnet: the run's network, restored
from its round checkpoint or its backbone pretrained now, under a linear head (plan.py). A
frozen pretrained backbone: its weights found and held to the run's identity, every image
embedded once (a person labels seeded samples meanwhile), and the probe learner over that
embedding, the rotation features where the run has them, and raw pixels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from salal_core.backbones.catalog import spec_of
from salal_core.backbones.embed import Embeddings, embed_batch, embed_images
from salal_core.backbones.weights import Weights, locate
from salal_core.config import RunConfig
from salal_core.data import DeviceData, ImageSet
from salal_core.data.load import cache_folder
from salal_core.errors import SalalError
from salal_core.events import Emit, Notice, PhaseChanged
from salal_core.learn.inputs import (
    HeadFeatures,
    embedding_features,
    pixel_features,
    rotnet_features,
)
from salal_core.learn.learner import Learner, TorchLearner
from salal_core.learn.pretrain import PretrainCheckpoint, build_model
from salal_core.learn.probe_learner import TUNED_STATE, ProbeLearner
from salal_core.learn.tuned_input import TunedInput, Tuner, restore_tuned, tune_mode
from salal_core.run import group
from salal_core.run.checkpoint import ModelShape, Resumed, RoundCheckpoint, compare_shape
from salal_core.run.plan import RunPlan, start_model
from salal_core.run.store import RunStore


@dataclass(frozen=True)
class StartedLearner:
    learner: Learner
    generator: torch.Generator  # the loop's random stream
    resumed: Resumed


def start_learner(
    plan: RunPlan,
    store: RunStore,
    images: ImageSet,
    data: DeviceData,
    checkpoint: RoundCheckpoint | None,
    weights: Weights | None,
    emit: Emit,
    before_training: Callable[[Emit], Emit],
) -> StartedLearner:
    """The run's learner on this rank, restored from `checkpoint` where there is one;
    `before_training` runs before pretraining or embedding begins (a person's first questions)
    and returns the sink their progress reports to. `weights` None: rotnet."""
    if weights is not None:
        return start_probe(
            plan.config,
            images,
            data,
            checkpoint,
            plan.shape,
            weights,
            plan.backbone,
            emit,
            before_training,
        )
    begun = start_model(plan, data, checkpoint, emit, before_training)
    if begun.pretrained is not None:
        rotation_model, results = begun.pretrained
        payload = PretrainCheckpoint.of(rotation_model, plan.config, results).to_payload()
        store.save_checkpoint("pretrain", payload)
    learner = TorchLearner(
        plan.config,
        begun.model,
        data,
        begun.generator,
        emit,
        begun.resumed.optimizer,
        plan.on_collapse,
    )
    return StartedLearner(group.lead(learner), begun.generator, begun.resumed)


def backbone_weights(config: RunConfig, store: RunStore) -> Weights:
    """The run's weights file, refused in one line where it is not the one the run began
    with: features from other weights would score the pool with another model."""
    spec = spec_of(config.model.backbone)
    given = config.model.backbone_weights
    weights = locate(spec, Path(given) if given else None)
    recorded = store.backbone_digest()
    if recorded is None:
        store.record_backbone_digest(weights.digest)
    elif recorded != weights.digest:
        raise SalalError(
            f"{weights.path} is not the {spec.name} weights file this run began with (sha256 "
            f"{recorded[:12]}…, this one {weights.digest[:12]}…); pass that file with "
            "--backbone-weights, or start a new run with --out"
        )
    return weights


def head_candidates(
    config: RunConfig, data: DeviceData, embedded: Embeddings, rotnet_source: Path | None
) -> list[HeadFeatures]:
    """What a backbone run's head may read, the backbone first: its embedding, the rotation
    network's features where the run has one, the raw pixels (the probe learner adds all of
    them side by side)."""
    candidates = [embedding_features(embedded.backbone, embedded.train, embedded.test)]
    if rotnet_source is not None:
        model = build_model(config, data.num_classes, data.device)
        PretrainCheckpoint.read(rotnet_source).load_into(model, config, str(rotnet_source))
        candidates.append(rotnet_features(model, data, config.eval_batch_size))
    candidates.append(pixel_features(data))
    return candidates


def start_probe(
    config: RunConfig,
    images: ImageSet,
    data: DeviceData,
    checkpoint: RoundCheckpoint | None,
    shape: ModelShape,
    weights: Weights,
    rotnet_source: Path | None,
    emit: Emit,
    before_embedding: Callable[[Emit], Emit],
) -> StartedLearner:
    """The learner of a backbone run, restored from `checkpoint` where there is one. A person
    starting from nothing is asked seeded samples before the embedding pass begins."""
    total = len(images.train) + len(images.test)
    emit(PhaseChanged("embedding", f"{weights.spec.name} features of {total:,} images"))
    during = before_embedding(emit) if checkpoint is None else emit
    batch = embed_batch(data.device)
    embedded = embed_images(images, weights, data.device, cache_folder(config.data), during, batch)
    how = "from the cache" if embedded.from_cache else f"in {embedded.seconds:.0f} s"
    emit(Notice(f"{weights.spec.name} features of {total:,} images {how}", "info"))
    candidates = head_candidates(config, data, embedded, rotnet_source)
    generator = torch.Generator().manual_seed(config.seed + 1)
    resumed, restored, tuned = Resumed(0, (), None), None, None
    tuner = head_tuner(config, images, data.device, weights, batch, emit)
    if checkpoint is not None:
        generator.set_state(checkpoint.generator.cpu())
        if compare_shape(checkpoint.shape, shape, checkpoint.name) == "same":
            restored = ProbeLearner.restore(checkpoint.model)
            resumed = Resumed(checkpoint.round + 1, checkpoint.curve, None, (), checkpoint.stop_set)
            tuned = restored_tuning(checkpoint, weights, images, data.device, batch, emit)
        else:  # another committee size: that round's head is fit again on every label
            resumed = Resumed(checkpoint.round, checkpoint.curve[:-1], None, (), None)
    learner = ProbeLearner(
        candidates,
        data.test_labels,
        data.has_test,
        data.num_classes,
        shape.members,
        generator,
        emit,
        restored,
        tuner,
        tuned,
    )
    return StartedLearner(learner, generator, resumed)


def head_tuner(
    config: RunConfig,
    images: ImageSet,
    device: torch.device,
    weights: Weights,
    batch: int,
    emit: Emit,
) -> Tuner | None:
    """What fine-tunes the backbone where `--fine-tune` asks for it on this device; None
    where the backbone stays frozen."""
    mode = tune_mode(config.model.fine_tune, device)
    if mode is None:
        return None
    steps = config.model.fine_tune_steps
    return Tuner.of(weights, images, device, mode, steps, batch, emit)


def restored_tuning(
    checkpoint: RoundCheckpoint,
    weights: Weights,
    images: ImageSet,
    device: torch.device,
    batch: int,
    emit: Emit,
) -> TunedInput | None:
    """The fine-tuned input a round checkpoint's head reads, embedded again by its weights
    (whatever --fine-tune says now: the head was fit on those features)."""
    state = checkpoint.model.get(TUNED_STATE)
    if not isinstance(state, dict):
        return None
    emit(
        PhaseChanged("embedding", f"the fine-tuned {weights.spec.name} of round {checkpoint.round}")
    )
    return restore_tuned(weights, state, images, device, emit, batch)
