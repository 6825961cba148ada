"""`salal-core predict`: the model's classes for images nobody has labeled.

    salal-core predict RUN_DIR                    every unlabeled image of a run
    salal-core predict --model model.pt FOLDER    a folder of new images, no run directory

A CSV on standard output (or --out FILE): source, class, confidence, and with --top K the K
best classes and their probabilities.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from salal_core.backbones.catalog import ROTNET
from salal_core.cli.commands.model_file import ModelFile
from salal_core.cli.commands.output import render, write_text
from salal_core.cli.options import Subparsers
from salal_core.config import DataConfig
from salal_core.data import DeviceData, ImageSet
from salal_core.data.load import cache_folder
from salal_core.data.skipped import skipped_sentence
from salal_core.data.sources import empty_split, read_images
from salal_core.errors import SalalError
from salal_core.learn.inference import predict
from salal_core.learn.pretrain import build_model
from salal_core.run.contents import OpenedRun
from salal_core.run.probe_model import ProbeModel, probe_model_of
from salal_core.runtime import resolve_device


def ranked(probs: torch.Tensor, names: list[str], top: int) -> list[dict[str, Any]]:
    """(N, C) probabilities -> per row the best class and confidence, and the top `top`."""
    values, classes = probs.topk(min(max(top, 1), probs.shape[1]), dim=1)
    rows = []
    for v, c in zip(values.tolist(), classes.tolist(), strict=True):
        row: dict[str, Any] = {"class": names[c[0]], "confidence": round(v[0], 4)}
        if top > 1:
            for rank in range(len(c)):
                row[f"class_{rank + 1}"] = names[c[rank]]
                row[f"p_{rank + 1}"] = round(v[rank], 4)
        rows.append(row)
    return rows


def predict_unlabeled(
    run_dir: Path, device_name: str = "auto", top: int = 1
) -> list[dict[str, Any]]:
    run = OpenedRun.read(run_dir)
    config, checkpoint, labeled = run.config, run.trained_round(), set(run.labels)
    device = resolve_device(device_name)
    matched = run.load_images()
    images, items = matched.images, matched.items
    unlabeled = np.flatnonzero([int(item) not in labeled for item in items.ids])
    if config.model.backbone != ROTNET:  # the features come from the embedding cache
        all_probs = probe_model_of(run, device).probabilities(
            images, device, cache_folder(config.data), None
        )
        probs = all_probs[torch.from_numpy(unlabeled)]
    else:
        data = DeviceData(images, device)
        shape = checkpoint.shape
        model = build_model(config, shape.classes, device, shape.members)
        model.load_state_dict(checkpoint.model)
        idx = torch.from_numpy(unlabeled).to(device)
        probs = predict(model, data.train_images[idx], data, config.eval_batch_size).mean(0).cpu()
    return [
        {
            "index": int(items.ids[i]),
            "source": str(images.original_path(int(i)) or images.train.ids[i]),
            **guess,
        }
        for i, guess in zip(unlabeled, ranked(probs, images.class_names, top), strict=True)
    ]


def predict_folder(
    model_path: Path,
    folder: Path,
    device_name: str = "auto",
    top: int = 1,
    weights_file: Path | None = None,
) -> list[dict[str, Any]]:
    """A model from export-model over every image file in `folder` (or archive)."""
    model_file = ModelFile.read(model_path)
    if not folder.exists():
        raise SalalError(f"{folder} does not exist; pass a folder of images")
    split, skipped = read_images(folder, model_file.image_size)
    if len(split) == 0:
        raise SalalError(f"no readable images in {folder}")
    if skipped:
        print(skipped_sentence(skipped, folder.name), file=sys.stderr)
    device = resolve_device(device_name)
    names = list(model_file.classes)
    images = ImageSet(split, empty_split(model_file.image_size), names, str(folder))
    if isinstance(model_file, ProbeModel):
        cache = cache_folder(DataConfig())
        probs = model_file.probabilities(images, device, cache, weights_file)
    else:
        data = DeviceData(images, device, normalization=(model_file.mean, model_file.std))
        model = model_file.network(device)
        probs = predict(model, data.train_images, data, 512).mean(0).cpu()
    root = folder if folder.is_dir() else None
    return [
        {"source": str(root / name) if root else name, **guess}
        for name, guess in zip(split.ids, ranked(probs, names, top), strict=True)
    ]


def cmd_predict(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise SalalError("--top must be 1 or more")
    if args.model is not None:
        rows = predict_folder(args.model, args.target, args.device, args.top, args.backbone_weights)
    else:
        rows = predict_unlabeled(args.target, args.device, args.top)
    fields = list(rows[0]) if rows else ["source", "class", "confidence"]
    text = render(rows, "csv", fields)
    if args.out:
        write_text(args.out, text)
        print(f"{len(rows)} predictions -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "predict", help="the model's class for every unlabeled image, or for a folder"
    )
    p.add_argument(
        "target", type=Path, metavar="RUN_DIR|FOLDER", help="a run, or with --model a folder"
    )
    p.add_argument("--model", type=Path, metavar="MODEL_PT", help="a model from export-model")
    p.add_argument("--out", type=Path, metavar="CSV", help="default: standard output")
    p.add_argument("--top", type=int, default=1, metavar="K", help="the K best classes too")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--backbone-weights",
        type=Path,
        metavar="FILE",
        help="the pretrained weights a --model on a backbone reads, where they are not at hand",
    )
    p.set_defaults(func=cmd_predict)
