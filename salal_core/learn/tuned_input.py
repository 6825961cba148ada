"""Whether a fine-tuned copy of the pretrained backbone beats its frozen features, asked of the
labels the way the head's other inputs are (probe_learner.py), and the tuned input itself.

A fine-tuned network's features depend on the labels it was tuned on, so its held-out verdicts
cannot come from one matrix: each fold tunes a copy on the other folds' labels (from the probe
on their frozen features), embeds them and the held-out images with it, and fits the head on
those features at each L2 strength, as the other inputs' folds do (probe.py). The scale is set
by the fold's images, held-out ones included, as unlabeled images set it in a round (the pool
is not embedded again for each fold). Each held-out label is then right or wrong under the
tuned network as under the frozen one, and the same rule decides: the frozen backbone unless
the tuned one is clearly better.

It costs a fine-tuning a fold and one over every label, then an embedding pass over the pool,
each round: on a CPU minutes, so `--fine-tune auto` asks only on a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from salal_core.backbones.embed import embed_pixels, embed_with
from salal_core.backbones.images import BackboneImages
from salal_core.backbones.networks import build_backbone
from salal_core.backbones.weights import Weights
from salal_core.config import FineTune
from salal_core.data import ImageSet
from salal_core.errors import SalalError
from salal_core.events import Emit, PhaseChanged
from salal_core.learn.inputs import HeadFeatures
from salal_core.learn.probe import (
    FOLDS,
    HeldOutScore,
    HeldOutTally,
    fit_probe,
    fold_of,
    fold_predictions,
    standardize,
)
from salal_core.learn.tune import fine_tune, head_layer, tune_steps, tuned_name

# Labeled images held decoded at the backbone's size for a fine-tuning (2,048 at 224 px are
# 300 MB); past that many, each step's batch is read from the source again.
HELD_IMAGES = 2_048

# "check": cross-validated every round past two labels a class; "always": every round, unasked.
TuneMode = Literal["check", "always"]


def tune_mode(setting: FineTune, device: torch.device) -> TuneMode | None:
    """What `--fine-tune` means on this device: `auto` checks on a GPU and never on a CPU,
    where a round would take minutes."""
    if setting == "auto":
        return "check" if device.type == "cuda" else None
    return None if setting == "off" else setting


@dataclass(frozen=True)
class TunedInput:
    """A fine-tuned backbone's embedding of every image, and the weights that gave it."""

    features: HeadFeatures
    state: dict[str, torch.Tensor]  # the tuned network's state dict, on the CPU


class LabeledImages:
    """Labeled images at the backbone's size by their index among the labels: held in memory up
    to `HELD_IMAGES`, read from the source batch by batch past that."""

    def __init__(self, pixels: BackboneImages, positions: np.ndarray) -> None:
        self.pixels, self.positions = pixels, positions
        self.held = pixels.take("train", positions) if len(positions) <= HELD_IMAGES else None

    def __call__(self, local: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) uint8 of the labels at `local` (indices among them)."""
        if self.held is not None:
            return self.held[local]
        return self.pixels.take("train", self.positions[local.numpy()])

    def batches(self, local: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(local), size):
            yield self(local[start : start + size])


class Tuner:
    """Fine-tunes copies of one pretrained network (`base`, left as it is) on a run's labeled
    images."""

    def __init__(
        self,
        base: nn.Module,
        pixels: BackboneImages,
        device: torch.device,
        mode: TuneMode,
        steps: int,
        batch_size: int,
        emit: Emit,
    ) -> None:
        self.base, self.pixels, self.spec = base, pixels, pixels.spec
        self.device, self.mode, self.steps, self.batch_size = device, mode, steps, batch_size
        self.emit = emit
        self.name = tuned_name(pixels.spec.name)

    @classmethod
    def of(
        cls,
        weights: Weights,
        images: ImageSet,
        device: torch.device,
        mode: TuneMode,
        steps: int,
        batch_size: int,
        emit: Emit,
    ) -> Tuner:
        """A tuner of the pretrained network in `weights` over a run's images."""
        pixels = BackboneImages(images, weights.spec)
        return cls(build_backbone(weights), pixels, device, mode, steps, batch_size, emit)

    def held_out(
        self,
        rows: np.ndarray,
        labels: np.ndarray,
        frozen: HeadFeatures,
        l2: float,
        classes: int,
        generator: torch.Generator,
        round_: int,
    ) -> HeldOutScore:
        """k-fold verdicts on the labeled positions `rows`, in the folds probe.cross_validate
        deals: each fold's copy is tuned from the probe at strength `l2` on `frozen`."""
        folds = min(FOLDS, len(rows))
        self.emit(PhaseChanged("training", f"round {round_}: {folds} fine-tuned copies, held out"))
        images = LabeledImages(self.pixels, rows)
        y = torch.from_numpy(labels[rows])
        fold, tally = fold_of(len(rows)), HeldOutTally(len(rows))
        everyone = torch.arange(len(rows))
        for k in range(folds):
            train, test = everyone[fold != k], everyone[fold == k]
            net = self._tuned(images, train, y, frozen, rows, l2, classes, generator, round_)
            features = embed_pixels(
                net, images.batches(everyone, self.batch_size), self.spec, self.device
            )
            mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
            x = standardize(features, mean, std)
            tally.add(test, fold_predictions(x[train], y[train], x[test], classes), y[test])
        return tally.best()

    def tune(
        self,
        indices: np.ndarray,
        labels: np.ndarray,
        frozen: HeadFeatures,
        l2: float,
        classes: int,
        generator: torch.Generator,
        round_: int,
    ) -> TunedInput:
        """A copy tuned on every label, and its embedding of every image."""
        images = LabeledImages(self.pixels, indices)
        y = torch.from_numpy(labels[indices])
        everyone = torch.arange(len(indices))
        net = self._tuned(images, everyone, y, frozen, indices, l2, classes, generator, round_)
        return tuned_input(net, self.pixels, self.device, self.emit, self.batch_size)

    def _tuned(
        self,
        images: LabeledImages,
        train: torch.Tensor,
        y: torch.Tensor,
        frozen: HeadFeatures,
        positions: np.ndarray,
        l2: float,
        classes: int,
        generator: torch.Generator,
        round_: int,
    ) -> nn.Module:
        """A copy tuned on the labels at `train` (indices among `positions`, `y` their
        classes), its classifier starting as the probe at strength `l2` on `frozen`."""
        probe = fit_probe(
            frozen.train[positions[train.numpy()]], y[train], classes, generator, 1, l2
        )
        head = head_layer(probe[0], frozen.mean, frozen.std)
        return fine_tune(
            self.base,
            head,
            lambda chosen: images(train[chosen]),
            y[train],
            self.spec,
            tune_steps(len(train), self.steps),
            self.device,
            generator,
            self.emit,
            round_,
        )


def tuned_input(
    net: nn.Module, pixels: BackboneImages, device: torch.device, emit: Emit, batch_size: int
) -> TunedInput:
    """A tuned network's embedding of every image (its progress reported), and its weights."""
    name = tuned_name(pixels.spec.name)
    train, test = embed_with(net, pixels, device, emit, batch_size, name)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return TunedInput(HeadFeatures.standardized(name, train, test), state)


def restore_tuned(
    weights: Weights,
    state: dict[str, torch.Tensor],
    images: ImageSet,
    device: torch.device,
    emit: Emit,
    batch_size: int,
) -> TunedInput:
    """The tuned input of a round checkpoint's weights: every image embedded again."""
    net = tuned_network(weights, state)
    return tuned_input(net, BackboneImages(images, weights.spec), device, emit, batch_size)


def tuned_network(weights: Weights, state: dict[str, torch.Tensor]) -> nn.Module:
    """The pretrained network of `weights`, built and checked, then loaded with tuned `state`
    (one line where the state is not that network's: a damaged file)."""
    net = build_backbone(weights)
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise SalalError(
            f"the fine-tuned {weights.spec.name} weights saved with this model or run do not fit "
            f"{weights.spec.name}; the file is damaged: export the model again, or resume from "
            "an earlier round"
        ) from None
    return net
