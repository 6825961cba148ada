"""A pretrained backbone as a frozen network: built by its family's library, the weights file
read with `weights_only=True` (or safetensors), checked key by key, its classifier removed, so
that it maps normalized images (B, 3, S, S) to pooled features (B, D)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from salal_core.backbones.catalog import BackboneSpec, import_extra
from salal_core.backbones.weights import Weights
from salal_core.errors import SalalError

# Wrappers training scripts put around a state dict.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: safetensors, or a torch file loaded with weights_only (it
    can never run code); one line when it is neither."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn download, another format, a refused pickle
        raise SalalError(
            f"{path} is not a readable weights file ({exc.__class__.__name__}); download it "
            "again, or pass another --backbone-weights"
        ) from None
    while isinstance(loaded, dict) and len(loaded) == 1 and next(iter(loaded)) in WRAPPER_KEYS:
        loaded = next(iter(loaded.values()))
    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise SalalError(f"{path} holds no state dict of tensors; pass a weights file")
    return {k.removeprefix("module."): v for k, v in loaded.items()}


def build_backbone(weights: Weights) -> nn.Module:
    """The frozen network for `weights.spec`, in eval mode, without its classifier."""
    spec = weights.spec
    state = read_state_dict(weights.path)
    if spec.family == "torchvision":
        net = _torchvision(spec, state, weights.path)
    elif spec.family == "timm":
        net = _timm(spec, state, weights.path)
    else:
        net = _open_clip(spec, state, weights.path)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def load_checked(
    net: nn.Module, state: dict[str, torch.Tensor], spec: BackboneSpec, path: Path
) -> None:
    """`load_state_dict`, strict, with one line naming the keys expected where the file is the
    weights of another network."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"{len(missing)} keys missing (e.g. {', '.join(missing[:3])})"
            if missing
            else f"{len(wrong)} of another shape (e.g. {', '.join(wrong[:3])})"
            if wrong
            else f"{len(unexpected)} keys it does not have (e.g. {', '.join(unexpected[:3])})"
        )
        raise SalalError(
            f"{path} does not hold {spec.name} weights: {detail}; {spec.name} expects keys "
            f"{', '.join(list(expected)[:3])}, …; pass the file for --backbone {spec.name}, or "
            "the --backbone this file belongs to"
        )
    net.load_state_dict(state)


# ---------------------------------------------------------------------------- per family


def _torchvision(spec: BackboneSpec, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    from torchvision.models import get_model

    net: nn.Module = get_model(spec.architecture, weights=None)
    load_checked(net, state, spec, path)
    # The classifier's last layer becomes the identity: what reaches it is the pooled feature.
    if spec.architecture.startswith("resnet"):
        net.fc = nn.Identity()
    elif spec.architecture.startswith("efficientnet"):
        net.classifier = nn.Identity()
    elif spec.architecture.startswith("convnext"):
        classifier: Any = net.classifier  # LayerNorm2d, Flatten, Linear
        classifier[2] = nn.Identity()
    elif spec.architecture.startswith("vit"):
        net.heads = nn.Identity()
    else:
        raise ValueError(f"no classifier rule for {spec.architecture}")
    return net


def _timm(spec: BackboneSpec, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    timm = import_extra("timm", spec)
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 0}
    if spec.architecture.startswith("vit"):
        kwargs["img_size"] = spec.input_size
    net: nn.Module = timm.create_model(spec.architecture, **kwargs)
    state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "head.", "_fc."))}
    if spec.architecture.startswith("vit"):
        # The position embeddings of a ViT trained at another size, resampled to this one.
        from timm.models.vision_transformer import checkpoint_filter_fn

        state = checkpoint_filter_fn(state, net)  # type: ignore[arg-type]
    elif "_conv_stem.weight" in state:
        state = _in_order(net, state, spec, path)
    load_checked(net, state, spec, path)
    return net


def _in_order(
    net: nn.Module, state: dict[str, torch.Tensor], spec: BackboneSpec, path: Path
) -> dict[str, torch.Tensor]:
    """EfficientNet weights in the `_conv_stem`/`_blocks` layout (the Lite0 package's): the
    same tensors as timm's, in the same order and shapes, under other names."""
    ours = list(net.state_dict().items())
    theirs = list(state.values())
    if len(ours) != len(theirs) or any(
        v.shape != t.shape for (_, v), t in zip(ours, theirs, strict=True)
    ):
        raise SalalError(
            f"{path} has {len(theirs)} tensors in the _conv_stem/_blocks layout, but "
            f"{spec.name} needs {len(ours)} of matching shapes; pass the file for --backbone "
            f"{spec.name}"
        )
    return {name: t for (name, _), t in zip(ours, theirs, strict=True)}


def _open_clip(spec: BackboneSpec, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    open_clip = import_extra("open_clip", spec)
    model = open_clip.create_model(spec.architecture, pretrained=None)
    if not any(k.startswith("visual.") for k in state):  # the image tower's own file
        state = {f"visual.{k}": v for k, v in state.items()}
    tower: nn.Module = model.visual
    visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    load_checked(tower, visual, spec, path)
    return tower
