"""Whether a fine-tuned copy of the pretrained backbone beats its frozen features, asked of the
labels the way the head's other inputs are (probe_learner.py), and the tuned input itself.

A fine-tuned network's features depend on the labels it was tuned on, so its held-out verdicts
cannot come from one matrix: each fold tunes a copy on the other folds' labels (from the probe
on their frozen features), embeds them and the held-out images with it, and fits the head on
those features exactly as a round would. Each held-out label is then right or wrong under the
tuned network as under the frozen one, and the same rule decides: the frozen backbone unless
the tuned one is clearly better.

It costs a fine-tuning a fold and one over every label, then an embedding pass over the pool:
seconds on a GPU, which is where `--fine-tune auto` asks; on a CPU only when told to.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from salal_core.backbones.embed import embed_pixels, embed_with
from salal_core.backbones.images import BackboneImages
from salal_core.backbones.networks import build_backbone
from salal_core.backbones.weights import Weights
from salal_core.config import FineTune
from salal_core.data import ImageSet
from salal_core.events import Emit, PhaseChanged
from salal_core.learn.inputs import HeadFeatures
from salal_core.learn.probe import FOLDS, HeldOutScore, cross_validate, fit_probe, probe_probs
from salal_core.learn.tune import fine_tune, head_layer, tune_steps, tuned_name

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


class Tuner:
    """Fine-tunes copies of one pretrained network on a run's labeled images."""

    def __init__(
        self,
        weights: Weights,
        images: ImageSet,
        device: torch.device,
        mode: TuneMode,
        steps: int,
        batch_size: int,
        emit: Emit,
    ) -> None:
        self.spec, self.mode, self.steps, self.batch_size = weights.spec, mode, steps, batch_size
        self.base = build_backbone(weights)
        self.pixels = BackboneImages(images, weights.spec)
        self.device, self.emit = device, emit
        self.name = tuned_name(weights.spec.name)

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
        """k-fold verdicts on the labeled positions `rows` (folds as probe.cross_validate deals
        them): each fold's tuned copy starts from the probe at strength `l2` on `frozen`; its
        head's strength is the one most folds chose."""
        folds = min(FOLDS, len(rows))
        self.emit(PhaseChanged("training", f"round {round_}: {folds} fine-tuned copies, held out"))
        images = self.pixels.take("train", rows)
        y = torch.from_numpy(labels[rows])
        fold = torch.arange(len(rows)) % folds
        right = torch.zeros(len(rows), dtype=torch.bool)
        chosen: list[float] = []
        for k in range(folds):
            train, test = fold != k, fold == k
            net = self._tuned(
                images[train], y[train], frozen, rows[train.numpy()], l2, classes, generator, round_
            )
            fit = HeadFeatures.standardized(
                self.name,
                embed_pixels(net, images[train], self.spec, self.device, self.batch_size),
                embed_pixels(net, images[test], self.spec, self.device, self.batch_size),
            )
            strength = cross_validate(fit.train, y[train], classes).l2
            weight = fit_probe(fit.train, y[train], classes, generator, 1, strength)
            right[test] = probe_probs(weight, fit.test).mean(0).argmax(1) == y[test]
            chosen.append(strength)
        return HeldOutScore(Counter(chosen).most_common(1)[0][0], right)

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
        images = self.pixels.take("train", indices)
        y = torch.from_numpy(labels[indices])
        net = self._tuned(images, y, frozen, indices, l2, classes, generator, round_)
        return self._embedded(net)

    def restore(self, state: dict[str, torch.Tensor]) -> TunedInput:
        """The tuned input of a round checkpoint's weights: the network's embedding again."""
        net = copy.deepcopy(self.base)
        net.load_state_dict(state)
        return self._embedded(net)

    def _tuned(
        self,
        images: torch.Tensor,
        y: torch.Tensor,
        frozen: HeadFeatures,
        positions: np.ndarray,
        l2: float,
        classes: int,
        generator: torch.Generator,
        round_: int,
    ) -> torch.nn.Module:
        probe = fit_probe(frozen.train[positions], y, classes, generator, 1, l2)[0]
        head = head_layer(probe, frozen.mean, frozen.std)
        steps = tune_steps(len(y), self.steps)
        return fine_tune(
            self.base, head, images, y, self.spec, steps, self.device, generator, self.emit, round_
        )

    def _embedded(self, net: torch.nn.Module) -> TunedInput:
        train, test = embed_with(
            net, self.pixels, self.device, self.emit, self.batch_size, self.name
        )
        state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        return TunedInput(HeadFeatures.standardized(self.name, train, test), state)
