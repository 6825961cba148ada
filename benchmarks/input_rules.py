"""Which input should a backbone run's head read? Each rule on the same labels.

A small-folders study's runs (`small_folders.py --backbones efficientnet_lite0`) chose their
labels round by round. On each run's labels at 10 to 160 labels (and at 20% and 50%), every
candidate input (the backbone's features, the raw pixels, both side by side) is
cross-validated and fit as the engine's head is, and each rule below is scored by the test
accuracy of the input it picks. The rules differ only in the choice, so the table isolates it;
the labels are those of the study's own rule, not each rule's (a rule also steers what
typiclust picks next, which only a run of the whole study per rule measures).

    python benchmarks/input_rules.py --out runs/sf --runs runs/sf/runs --folders 1000,digits

Prints one row per rule and label count (means over seeds) on stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from small_folders import backbone_embeddings

from cpu_backbone import folder_config
from folder_runs import labeled_rounds
from salal_core.config import with_overrides
from salal_core.data import DeviceData, load_dataset
from salal_core.learn.input_choice import choice_sample, clearly_better, few_labels, pick
from salal_core.learn.inputs import HeadFeatures, combined
from salal_core.learn.probe import HeldOutScore, cross_validate, fit_probe, probe_probs
from salal_core.run.start import head_candidates

BACKBONE, BOTH, PIXELS = 0, 1, 2  # the candidates, in this order
COUNTS = (10, 20, 40, 80, 160)  # a budgets run is read at these; a fractions run at each round

Rule = Callable[[Sequence[HeldOutScore]], int]


def best_of(order: Sequence[int]) -> Rule:
    """The highest k-fold accuracy among `order`, ties to the earlier."""
    return lambda scores: max(order, key=lambda i: (scores[i].accuracy, -order.index(i)))


def unless_clearly(default: int, challenger: int) -> Rule:
    """`default`, unless `challenger` got clearly more held-out labels right."""
    return lambda scores: (
        challenger if clearly_better(scores[challenger], scores[default]) else default
    )


RULES: dict[str, Rule] = {
    "the higher accuracy, backbone or pixels": best_of([BACKBONE, PIXELS]),
    "the higher accuracy of all three": best_of([BACKBONE, BOTH, PIXELS]),
    "side by side, unless the backbone is clearly better": unless_clearly(BOTH, BACKBONE),
    "the backbone, unless side by side is clearly better": unless_clearly(BACKBONE, BOTH),
    "the backbone alone": lambda scores: BACKBONE,
    "side by side alone": lambda scores: BOTH,
    "pixels alone": lambda scores: PIXELS,
}


def candidates(
    out: Path, folder: str, backbone: str
) -> tuple[list[HeadFeatures], DeviceData, list[str]]:
    """The folder's candidate inputs as the engine builds them (no rotation network), its data
    and image digests."""
    base = folder_config(out / "folders" / folder, out / "cache", 8, {})
    config = with_overrides(base, {"model.backbone": backbone, "model.backbone_weights": None})
    images = load_dataset(config.data, 0)
    data = DeviceData(images, torch.device("cpu"))
    backbone_part, pixels = head_candidates(config, data, backbone_embeddings(config, images), None)
    return [backbone_part, combined([backbone_part, pixels]), pixels], data, images.train.digests


def score_round(
    inputs: Sequence[HeadFeatures],
    rows: torch.Tensor,
    labels: torch.Tensor,
    test: torch.Tensor,
    classes: int,
) -> dict[str, float]:
    """Each rule's test accuracy on these labels, and salal's own rule's (the probe learner's)."""
    scores, accuracy = [], []
    sample = torch.from_numpy(choice_sample(rows.numpy(), classes))  # as the engine's choice
    for features in inputs:
        score = cross_validate(features.train[sample], labels[sample], classes)
        weight = fit_probe(
            features.train[rows], labels[rows], classes, torch.Generator(), 1, score.l2
        )
        predicted = probe_probs(weight, features.test).mean(0).argmax(1)
        scores.append(score)
        accuracy.append(float((predicted == test).float().mean()))
    out = {name: accuracy[rule(scores)] for name, rule in RULES.items()}
    # The probe learner's own decision, its candidates in its order (the backbone, the pixels,
    # then both side by side), on the scores above.
    names = [f.name for f in inputs]
    chosen = (
        names[BOTH]
        if few_labels(len(rows), classes)
        else pick([(names[i], scores[i]) for i in (BACKBONE, PIXELS, BOTH)])[0]
    )
    out["salal's rule"] = accuracy[names.index(chosen)]
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, dict[int, dict[str, float]]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the study's --out (folders and cache)")
    p.add_argument("--runs", type=Path, required=True, help="the study's --runs")
    p.add_argument("--folders", default="300,1000,5000,digits")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--backbone", default="efficientnet_lite0")
    args = p.parse_args(argv)
    report: dict[str, dict[int, dict[str, float]]] = {}
    for folder in args.folders.split(","):
        inputs, data, digests = candidates(args.out, folder, args.backbone)
        position = {d: i for i, d in enumerate(digests)}
        labels, test = data.train_labels.cpu(), data.test_labels.cpu()
        found: dict[int, list[dict[str, float]]] = {}
        for plan in ("budgets", "fractions"):
            for seed in range(args.seeds):
                run = args.runs / folder / f"typiclust-{args.backbone}-{plan}-seed{seed}"
                if not run.exists():
                    continue
                chosen = labeled_rounds(run)
                for round_ in sorted(set(chosen.values())):
                    rows = torch.tensor(
                        sorted(position[d] for d, r in chosen.items() if r <= round_)
                    )
                    if plan == "fractions" or len(rows) in COUNTS:
                        found.setdefault(len(rows), []).append(
                            score_round(inputs, rows, labels, test, data.num_classes)
                        )
        report[folder] = {
            n: {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}
            for n, rows in sorted(found.items())
        }
        for n, means in report[folder].items():
            cells = "  ".join(f"{name}: {value:.3f}" for name, value in means.items())
            print(f"{folder} {n} labels ({len(found[n])} runs)  {cells}", flush=True)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
