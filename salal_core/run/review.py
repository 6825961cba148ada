"""Which labels to look at again: confident learning (Northcutt et al., JAIR 2021) over
out-of-sample probabilities.

Every labeled image is scored by linear heads on the run's frozen backbone, fit in k folds so
that no head has seen the label it scores. A class's threshold is the mean probability the
heads give it on the images labeled with it; an image is a suspect when another class clears
its own threshold and beats the given one: the model is confident, and confident of something
else. Suspects come first, least sure of their given label first; then everything else in the
same order, so a person can keep going. Where several labelers answered an image differently
(`--overlap`), it comes before all of them: people disagreeing is the surest sign there is.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from salal_core.data import DeviceData
from salal_core.errors import SalalError
from salal_core.learn.inference import pool_pass
from salal_core.learn.pretrain import PretrainCheckpoint, build_model
from salal_core.learn.probe import fit_probe, probe_probs
from salal_core.run.contents import MatchedImages, OpenedRun
from salal_core.runtime import resolve_device

FOLDS = 5


@dataclass(frozen=True)
class Doubt:
    item: int
    position: int  # in the loaded images, to draw it
    given: int
    guess: int
    p_given: float  # out-of-sample probability of the given label
    p_guess: float
    suspect: bool
    oracle: str  # who gave the label: "human" typed it, "accepted" took the model's guess
    labeler: str  # the person who gave it ("" for the ground truth, a file)
    disputed: tuple[tuple[str, int], ...]  # every labeler's answer where they differ, else ()


def out_of_sample(
    x: torch.Tensor, y: torch.Tensor, classes: int, generator: torch.Generator
) -> torch.Tensor:
    """(N, E), (N,) -> (N, C): each row from a probe fit on the other folds."""
    n = x.shape[0]
    folds = min(FOLDS, n)
    order = torch.randperm(n, generator=generator)
    probs = torch.full((n, classes), 1.0 / classes)
    for f in range(folds):
        held = order[f::folds]
        rest = torch.cat([order[g::folds] for g in range(folds) if g != f])
        if len(rest):
            probs[held] = probe_probs(fit_probe(x[rest], y[rest], classes, generator), x[held])[0]
    return probs


def rank(
    probs: torch.Tensor, given: torch.Tensor, disputed: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) probabilities, (N,) given labels and which labelers disagree on -> (the review
    order, suspect mask)."""
    classes = probs.shape[1]
    thresholds = torch.full((classes,), float("inf"))
    for c in range(classes):
        mine = given == c
        if bool(mine.any()):
            thresholds[c] = probs[mine, c].mean()
    confident = probs >= thresholds  # (N, C): classes that clear their own bar
    best = torch.where(confident, probs, -1.0).argmax(1)
    suspect = confident.any(1) & (best != given)
    p_given = probs.gather(1, given.view(-1, 1))[:, 0]
    # Disputed first, then suspects, each group from the least sure of its given label.
    first = torch.zeros_like(suspect) if disputed is None else disputed
    order = np.lexsort((p_given.numpy(), (~suspect).numpy(), (~first).numpy()))
    return torch.from_numpy(order), suspect


def doubts_apart(run_dir: Path, device_name: str = "auto", labeler: str = "") -> list[Doubt]:
    """`review_doubts` in a spawned process of its own, as the engine runs: an app's keys never
    wait on its pool pass and probes. A `SalalError` comes back as itself."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_doubts_of, run_dir, device_name, labeler).result()
        except BrokenProcessPool as exc:
            raise SalalError(f"the review process of {run_dir} stopped: {exc}") from None


def _doubts_of(run_dir: Path, device_name: str, labeler: str) -> list[Doubt]:
    run = OpenedRun.read(run_dir)
    return review_doubts(run, run.load_images(), device_name, labeler)


def review_doubts(
    run: OpenedRun, matched: MatchedImages, device_name: str = "auto", labeler: str = ""
) -> list[Doubt]:
    """Every label of the run whose image is still in `matched` (its positions there), in
    review order; with `labeler`, that labeler's own answers, whether they count or not."""
    config = run.config
    images, where = matched.images, matched.positions()
    if labeler:
        mine = (r for votes in run.votes.values() for r in votes if r.labeler == labeler)
        records = [r for r in mine if r.item in where]
        if not records:
            raise SalalError(
                f"{labeler} has no labels in {run.dir}; salal-core agreement {run.dir} lists "
                "its labelers"
            )
    else:
        records = [r for r in run.labels.values() if r.item in where]
    # People disagreeing: a correction of the ground truth's label is no dispute.
    people = {item: [r for r in votes if r.labeler] for item, votes in run.votes.items()}
    disputes = {
        item: tuple(sorted((r.labeler, r.label) for r in votes))
        for item, votes in people.items()
        if len({r.label for r in votes}) > 1
    }
    if len(records) < 2:
        raise SalalError(f"{run.dir} has fewer than two labels to review")
    device = resolve_device(device_name)
    data = DeviceData(images, device)
    checkpoint = run.newest_round()
    model = build_model(config, data.num_classes, device, 1)
    if checkpoint is not None:  # the backbone as trained so far; the heads below see no label
        model.load_backbone(checkpoint.model)
    else:
        own = run.dir / "checkpoints" / "pretrain.pt"
        if not own.exists():
            raise SalalError(f"{run.dir} has no trained backbone yet; run or resume it first")
        PretrainCheckpoint.read(own).load_into(model, config, str(own))
    positions = torch.tensor([where[r.item] for r in records])
    x = pool_pass(model, data.train_images[positions.to(device)], data, config.eval_batch_size)[2]
    given = torch.tensor([r.label for r in records])
    probs = out_of_sample(x.cpu(), given, data.num_classes, torch.Generator().manual_seed(0))
    disputed = torch.tensor([r.item in disputes for r in records])
    order, suspect = rank(probs, given, disputed)
    guess = probs.argmax(1)
    return [
        Doubt(
            records[i].item,
            int(positions[i]),
            int(given[i]),
            int(guess[i]),
            float(probs[i, given[i]]),
            float(probs[i, guess[i]]),
            bool(suspect[i]),
            records[i].oracle,
            records[i].labeler,
            disputes.get(records[i].item, ()),
        )
        for i in order.tolist()
    ]
