"""Score a pool from a round checkpoint and select with several strategies, as one process or
as a torchrun group; rank 0 writes what it saw and chose as JSON (test_distributed.py).

    python tests/rank_scoring.py RUN_DIR OUT.json
    torchrun --nproc-per-node 2 tests/rank_scoring.py RUN_DIR OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from salal_core import distributed
from salal_core.config_io import load_toml
from salal_core.data import DeviceData
from salal_core.data.load import load_for_run
from salal_core.events import ignore
from salal_core.learn.learner import TorchLearner
from salal_core.learn.pretrain import build_model
from salal_core.run.checkpoint import RoundCheckpoint, restore_model
from salal_core.selection import acquire
from salal_core.selection.pool import Pool

STRATEGIES = ("entropy", "margin", "random", "coreset", "badge", "typiclust")


def main(run_dir: Path, out: Path) -> None:
    device = torch.device("cpu")
    world = distributed.join(device, timeout=120)
    config = load_toml(run_dir / "config.toml")
    payload = torch.load(run_dir / "checkpoints" / "round-0000.pt", weights_only=True)
    checkpoint = RoundCheckpoint.from_payload(payload, "round-0000")
    images = load_for_run(config, write_cache=False)
    data = DeviceData(images, device, shard=world.shard)
    model = build_model(config, data.num_classes, device, checkpoint.shape.members)
    generator = torch.Generator(device=device)
    restore_model(model, generator, checkpoint, checkpoint.shape)
    learner = TorchLearner(config, model, data, generator, ignore)
    # Every third image "labeled", and the first five: the pool has gaps, and the ranks hold
    # unequal shares of it, so the gather pads one of them.
    everything = np.arange(data.num_train)
    taken = (everything % 3 == 0) | (everything < 5)
    labeled, pool = everything[taken], everything[~taken]
    shares = np.bincount(pool % world.size, minlength=world.size)
    assert world.size == 1 or len(set(shares.tolist())) > 1, shares
    seen = learner.pool_pass(pool)
    labeled_embeddings = learner.pool_pass(labeled, ("embeddings",)).embeddings
    chosen_by: dict[str, dict[str, list[float]]] = {}
    if world.is_main:
        for name in STRATEGIES:
            strategy = acquire.get(name)
            chosen, scores = strategy.select(
                Pool(
                    seen.probabilities,
                    seen.features,
                    seen.embeddings,
                    labeled_embeddings,
                    torch.arange(len(pool)),
                ),
                20,
                torch.Generator().manual_seed(7),
            )
            chosen_by[name] = {"items": pool[chosen.numpy()].tolist(), "scores": scores.tolist()}
        report = {
            "world": world.size,
            "pool": pool.tolist(),
            "probabilities": seen.probabilities.tolist(),
            "features": seen.features.tolist(),
            "embeddings": seen.embeddings.tolist(),
            "labeled_embeddings": labeled_embeddings.tolist(),
            "chosen": chosen_by,
        }
        out.write_text(json.dumps(report))
    distributed.leave(in_step=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
