"""`salal-core export-model RUN_DIR -o model.pt`: a trained model to take away, and reading it
back. One dict of tensors and plain values (it loads with `weights_only=True`): the weights,
the class names and the preprocessing (image size, per-channel mean and std)."""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from salal_core.backbones.catalog import ROTNET
from salal_core.cli.options import Subparsers
from salal_core.config import HEAD_INPUTS, HeadInput
from salal_core.data.device_data import channel_stats
from salal_core.errors import SalalError
from salal_core.files import atomic_write_bytes, read_payload_file
from salal_core.learn.model import Net
from salal_core.run.contents import OpenedRun
from salal_core.run.probe_model import PROBE_KIND, ProbeModel, probe_model_of

MODEL_KIND = "salal-model"
MODEL_VERSION = 2  # 2: the head's input; version-1 heads all read the last stage
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class ModelFile:
    model: dict[str, torch.Tensor]
    width: int
    members: int
    head_input: HeadInput
    classes: tuple[str, ...]
    image_size: int
    mean: torch.Tensor  # (3,)
    std: torch.Tensor  # (3,)

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": MODEL_KIND,
            "version": MODEL_VERSION,
            "model": self.model,
            "width": self.width,
            "members": self.members,
            "head_input": self.head_input,
            "classes": list(self.classes),
            "image_size": self.image_size,
            "mean": self.mean,
            "std": self.std,
        }

    def network(self, device: torch.device) -> Net:
        net = Net(self.width, len(self.classes), self.members, self.head_input)
        net.load_state_dict(self.model)
        return net.to(device).eval()

    @classmethod
    def read(cls, path: Path) -> ModelFile | ProbeModel:
        """The model in `path` (a network, or a head on a backbone's features), or one line
        saying why it is not one."""
        try:
            payload = read_payload_file(path)
        except FileNotFoundError:
            raise SalalError(f"{path} does not exist; pass a model.pt from export-model") from None
        except Exception as exc:  # not a torch file, a refused pickle, a torn write
            raise SalalError(
                f"{path} is not a salal model ({exc.__class__.__name__}); make one with "
                "salal-core export-model RUN_DIR -o model.pt"
            ) from None
        if isinstance(payload, dict) and payload.get("kind") == PROBE_KIND:
            return ProbeModel.from_payload(payload, path)
        if not isinstance(payload, dict) or payload.get("kind") != MODEL_KIND:
            raise SalalError(
                f"{path} is not a salal model; make one with salal-core export-model RUN_DIR "
                "-o model.pt (a checkpoint from a run directory is not one)"
            )
        if payload.get("version") not in READABLE_VERSIONS:
            raise SalalError(f"{path} is a model of another salal version; export it again")
        head_input = payload.get("head_input", "last")
        if head_input not in HEAD_INPUTS:
            raise SalalError(f"{path} is a damaged salal model; export it again")
        return cls(
            payload["model"],
            int(payload["width"]),
            int(payload["members"]),
            head_input,
            tuple(payload["classes"]),
            int(payload["image_size"]),
            payload["mean"],
            payload["std"],
        )


def export_model(run_dir: Path, out: Path) -> ModelFile | ProbeModel:
    run = OpenedRun.read(run_dir)
    config = run.config
    model: ModelFile | ProbeModel
    if config.model.backbone != ROTNET:
        model = probe_model_of(run, torch.device("cpu"))
    else:
        checkpoint = run.trained_round()
        # The preprocessing is the training set's own statistics, from the decode cache.
        images = run.load_images().images
        mean, std = channel_stats(torch.from_numpy(images.train.images).permute(0, 3, 1, 2))
        model = ModelFile(
            checkpoint.model,
            checkpoint.shape.width,
            checkpoint.shape.members,
            checkpoint.shape.head_input,
            tuple(images.class_names),
            config.data.image_size,
            mean,
            std,
        )
    buffer = io.BytesIO()
    torch.save(model.to_payload(), buffer)
    try:
        atomic_write_bytes(out, buffer.getbuffer())
    except OSError as exc:
        raise SalalError(f"cannot write {out} ({exc.strerror or exc}); pass another path") from None
    return model


def cmd_export_model(args: argparse.Namespace) -> int:
    model = export_model(args.run_dir, args.output)
    reads = (
        f"a head on {model.head.input}"
        if isinstance(model, ProbeModel)
        else f"{model.image_size}×{model.image_size} images"
    )
    print(f"{len(model.classes)} classes, {reads} -> {args.output}", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("export-model", help="a run's model, to use without the run directory")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="MODEL_PT")
    p.set_defaults(func=cmd_export_model)
