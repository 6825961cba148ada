"""A backbone run's model, taken away: the head and what it reads. The file holds the head, the
input's standardization and, per input, what makes that input from new images: the backbone's
name and weights digest (the weights stay in their own file, found again where they are or
passed with --backbone-weights), and where the head reads a fine-tuned copy of it, the tuned
weights themselves; the pixels' size and normalization, or the rotation network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from salal_core.backbones.catalog import spec_of
from salal_core.backbones.embed import embed_batch, embed_images, embed_with
from salal_core.backbones.images import BackboneImages
from salal_core.backbones.weights import Weights, WeightsUnavailable, locate
from salal_core.config import HEAD_INPUTS, HeadInput
from salal_core.data import DeviceData, ImageSet
from salal_core.data.device_data import channel_stats
from salal_core.errors import SalalError
from salal_core.events import ignore
from salal_core.learn.batchnorm import recalibrate
from salal_core.learn.frozen import stage_features
from salal_core.learn.inputs import JOIN, PIXELS, ROTNET
from salal_core.learn.model import Net
from salal_core.learn.pretrain import PretrainCheckpoint, build_model
from salal_core.learn.probe_learner import TUNED_STATE, FittedHead, ProbeLearner
from salal_core.learn.train import prepare
from salal_core.learn.tune import tuned_name
from salal_core.learn.tuned_input import tuned_network
from salal_core.run.contents import OpenedRun
from salal_core.run.plan import rotation_source

PROBE_KIND = "salal-probe-model"
# 2: a head may read several inputs side by side ("a+b"), which version 1's readers would take
# for the rotation network; version 1 files, one input each, read the same.
# 3: a head may read a fine-tuned backbone, whose weights the file holds.
PROBE_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


@dataclass(frozen=True)
class ProbeModel:
    classes: tuple[str, ...]
    head: FittedHead
    backbone: str
    backbone_digest: str
    image_size: int  # the side raw pixels and the rotation network read
    pixel_mean: torch.Tensor  # (3,) the training images' channel statistics
    pixel_std: torch.Tensor
    rotnet_width: int  # the rotation network, where the head reads it; else 0 and {}
    rotnet_head_input: HeadInput
    rotnet: dict[str, torch.Tensor]
    tuned_backbone: dict[str, torch.Tensor]  # where the head reads it; else {}

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": PROBE_KIND,
            # Without a tuned network the file is one version 2's readers read as well.
            "version": PROBE_VERSION if self.tuned_backbone else 2,
            "classes": list(self.classes),
            "head": {
                "input": self.head.input,
                "l2": self.head.l2,
                "weight": self.head.weight,
                "mean": self.head.mean,
                "std": self.head.std,
            },
            "backbone": self.backbone,
            "backbone_digest": self.backbone_digest,
            "image_size": self.image_size,
            "pixel_mean": self.pixel_mean,
            "pixel_std": self.pixel_std,
            "rotnet_width": self.rotnet_width,
            "rotnet_head_input": self.rotnet_head_input,
            "rotnet": self.rotnet,
            "tuned_backbone": self.tuned_backbone,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: Path) -> ProbeModel:
        if payload.get("version") not in READABLE_VERSIONS:
            raise SalalError(f"{path} is a model of another salal version; export it again")
        try:
            head = ProbeLearner.restore(payload["head"])
            head_input = payload["rotnet_head_input"]
            tuned = dict(payload.get("tuned_backbone", {}))
            backbone = str(payload["backbone"])
            known = (backbone, PIXELS, ROTNET, *([tuned_name(backbone)] if tuned else []))
            if head is None or head_input not in HEAD_INPUTS:
                raise KeyError("head")
            if any(part not in known for part in head.input.split(JOIN)):
                raise ValueError(head.input)
            return cls(
                tuple(str(c) for c in payload["classes"]),
                head,
                str(payload["backbone"]),
                str(payload["backbone_digest"]),
                int(payload["image_size"]),
                payload["pixel_mean"],
                payload["pixel_std"],
                int(payload["rotnet_width"]),
                head_input,
                dict(payload["rotnet"]),
                tuned,
            )
        except (KeyError, TypeError, ValueError):
            raise SalalError(f"{path} is a damaged salal model; export it again") from None

    def probabilities(
        self, images: ImageSet, device: torch.device, cache_dir: Path, weights_file: Path | None
    ) -> torch.Tensor:
        """(N, C) class probabilities of `images.train`, from the input the head reads."""
        return self.head.probabilities(self._features(images, device, cache_dir, weights_file))

    def _features(
        self, images: ImageSet, device: torch.device, cache_dir: Path, weights_file: Path | None
    ) -> torch.Tensor:
        """The raw input the head reads: one input, or each of a combined one's side by side
        (the head's statistics standardize and scale them)."""
        parts = self.head.input.split(JOIN)
        return torch.cat(
            [self._input(part, images, device, cache_dir, weights_file) for part in parts], 1
        )

    def _input(
        self,
        name: str,
        images: ImageSet,
        device: torch.device,
        cache_dir: Path,
        weights_file: Path | None,
    ) -> torch.Tensor:
        if name in (self.backbone, tuned_name(self.backbone)):
            weights = self._weights(weights_file)
            if name == self.backbone:
                return embed_images(images, weights, device, cache_dir, ignore).train.float()
            net = tuned_network(weights, self.tuned_backbone)
            pixels = BackboneImages(images, weights.spec)
            return embed_with(net, pixels, device, ignore, embed_batch(device))[0]
        data = DeviceData(images, device, normalization=(self.pixel_mean, self.pixel_std))
        if name == PIXELS:
            return prepare(data.train_images, data).float().flatten(1).cpu()
        net = Net(self.rotnet_width, len(self.classes), 1, self.rotnet_head_input).to(device)
        net.load_backbone(self.rotnet)
        return stage_features(net, data.train_images, data, 256).head.cpu()

    def _weights(self, weights_file: Path | None) -> Weights:
        """The backbone's weights file the model was trained on, found or passed."""
        spec = spec_of(self.backbone)
        try:
            weights = locate(spec, weights_file)
        except WeightsUnavailable as exc:
            raise SalalError(
                f"this model reads {spec.name} features (weights sha256 "
                f"{self.backbone_digest[:12]}…), which are not on this machine "
                f"({str(exc).split(';')[0]}); pass --backbone-weights FILE"
            ) from None
        if weights.digest != self.backbone_digest:
            raise SalalError(
                f"{weights.path} is not the {spec.name} weights file this model was trained "
                f"on (sha256 {self.backbone_digest[:12]}…); pass that file with "
                "--backbone-weights"
            )
        return weights


def probe_model_of(run: OpenedRun, device: torch.device) -> ProbeModel:
    """The model of a backbone run's newest round."""
    checkpoint = run.trained_round()
    head = ProbeLearner.restore(checkpoint.model)
    if head is None:
        raise SalalError(f"{run.dir} has no trained head yet; run or resume it first")
    config = run.config
    images = run.load_images().images
    pixels = torch.from_numpy(images.train.images).permute(0, 3, 1, 2)
    mean, std = channel_stats(pixels)
    rotnet: dict[str, torch.Tensor] = {}
    source = rotation_source(config, run.dir / "checkpoints")
    if ROTNET in head.input.split(JOIN) and source is not None:
        data = DeviceData(images, device)
        net = build_model(config, len(images.class_names), device)
        PretrainCheckpoint.read(source).load_into(net, config, str(source))
        recalibrate(net, data, torch.arange(len(data.train_images), device=device), rotate=False)
        rotnet = {k: v.cpu() for k, v in net.state_dict().items() if k.startswith("backbone.")}
    tuned: dict[str, torch.Tensor] = {}
    if head.input == tuned_name(config.model.backbone):  # the tuned weights are the model's own
        state: dict[str, Any] = checkpoint.model
        tuned = {k: v.cpu() for k, v in state[TUNED_STATE].items()}
    return ProbeModel(
        tuple(images.class_names),
        head,
        config.model.backbone,
        run.backbone_digest or "",
        config.data.image_size,
        mean,
        std,
        config.model.width,
        config.model.head_input,
        rotnet,
        tuned,
    )
