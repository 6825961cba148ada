"""`salal-core predict RUN_DIR`: the model's class and confidence for every unlabeled image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import ROUND_PREFIX, RoundCheckpoint
from ..data import DeviceData
from ..data.load import load_for_run
from ..errors import SalalError
from ..labels import RunItems
from ..options import Subparsers
from ..pretrain import build_model
from ..runtime import resolve_device
from ..store import RunStore
from ..train import predict
from .output import render, write_text


def predict_unlabeled(run_dir: Path, device_name: str = "auto") -> list[dict[str, Any]]:
    store = RunStore(run_dir, create=False, lock=False)
    try:
        config = store.load_config()
        found = store.load_checkpoint(ROUND_PREFIX)
        if found is None:
            raise SalalError(f"{run_dir} has no trained round yet; run or resume it first")
        checkpoint = RoundCheckpoint.from_payload(found[0], found[1].name)
        stored = store.items()
        labeled = set(store.labels())
        names = store.class_names()
    finally:
        store.close()
    device = resolve_device(device_name)
    images = load_for_run(config, names, [s.digest for s in stored] or None)
    items = RunItems.resolve(stored, images.train)
    data = DeviceData(images, device)
    shape = checkpoint.shape
    model = build_model(config, shape.classes, device, shape.members)
    model.load_state_dict(checkpoint.model)
    unlabeled = np.flatnonzero([int(item) not in labeled for item in items.ids])
    idx = torch.from_numpy(unlabeled).to(device)
    probs = predict(model, data.train_images[idx], data, config.eval_batch_size).mean(0).cpu()
    confidence, cls = probs.max(-1)
    return [
        {
            "index": int(items.ids[i]),
            "source": str(images.original_path(int(i)) or images.train.ids[i]),
            "class": images.class_names[int(c)],
            "confidence": round(float(p), 4),
        }
        for i, c, p in zip(unlabeled, cls, confidence, strict=True)
    ]


def cmd_predict(args: argparse.Namespace) -> int:
    rows = predict_unlabeled(args.run_dir, args.device)
    write_text(args.out, render(rows, "csv", ["index", "source", "class", "confidence"]))
    print(f"{len(rows)} predictions -> {args.out}", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("predict", help="the model's class for every unlabeled image")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="CSV")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)
