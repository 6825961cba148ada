"""Every flag that sets a run's configuration, declared once, one row a flag.

The parsers of `salal-core run`, `pretrain`, `compare` and `bench` and of `salal-tui`, the
overrides a command line makes, and the two resume lists are all built from this table, so a
new flag is one row. It is long because it is a table; it owns one idea.
"""

from __future__ import annotations

from pathlib import Path

from salal_core.backbones.catalog import BACKBONE_CHOICES
from salal_core.config import COMPILE_MODES, FINE_TUNE_CHOICES, PRESETS
from salal_core.data.decode import MIN_SIDE
from salal_core.distributed import DEFAULT_GROUP_TIMEOUT
from salal_core.selection.acquire import ACQUISITIONS
from salal_core.settings.bounds import Bounds, whole_number
from salal_core.settings.flag import Flag, resolved_path

# The most optimizer steps a phase may be asked to take at least: the paper recipe pretrains
# for 100 epochs of 97 steps; each step's images are drawn up front (steps x batch indices).
MAX_STEPS = 100_000

FLAGS: tuple[Flag, ...] = (
    # data
    Flag(
        "--data",
        "data",
        ("data.source",),
        "fixed",
        "cifar-10-python.tar.gz, cifar-10-batches-py/, an image folder or a .tar/.tar.gz of one "
        "(default: download CIFAR-10)",
        metavar="PATH",
        convert=resolved_path,
    ),
    Flag(
        "--cache-dir",
        "data",
        ("data.cache_dir",),
        "may change",
        "decode and download cache (default: the platform's user cache)",
        metavar="DIR",
        convert=lambda value: str(Path(value).resolve()),
    ),
    Flag(
        "--train-limit",
        "data",
        ("data.train_limit",),
        "fixed",
        "use a seeded, class-balanced slice of N training images",
        whole_number,
        "N",
    ),
    Flag(
        "--test-limit",
        "data",
        ("data.test_limit",),
        "fixed",
        "likewise for the test split",
        whole_number,
        "N",
    ),
    Flag(
        "--image-size",
        "data",
        ("data.image_size",),
        "fixed",
        "side the model sees (32)",
        whole_number,
        "PX",
        bounds=Bounds(MIN_SIDE, 512, "the pool is held decoded: 50,000 images at 512 are 39 GB"),
    ),
    # Checked against the run's class table, not its config.
    Flag(
        "--classes",
        "data",
        (),
        "fixed",
        "class names for a folder of unlabeled images",
        metavar="A,B,...",
    ),
    Flag("--classes-file", "data", (), "fixed", "class names, one a line", metavar="FILE"),
    # model and training; no argparse `choices`: an unknown name gets salal's one-line error
    Flag(
        "--preset",
        "model",
        ("preset",),
        "fixed",
        f"recipe: {', '.join(PRESETS)} (default fast on a GPU, cpu without)",
    ),
    Flag(
        "--seed",
        "model",
        ("seed",),
        "fixed",
        type=whole_number,
        bounds=Bounds(0, 2**63 - 1, "a 64-bit integer, as config.toml holds it"),
    ),
    Flag("--device", "model", ("device",), "may change", "auto, cuda or cpu (default auto)"),
    Flag(
        "--width", "model", ("model.width",), "fixed", "network width; 64 is ResNet18", whole_number
    ),
    Flag(
        "--head-input",
        "model",
        ("model.head_input",),
        "fixed",
        "what the class head reads: last (the last stage pooled) or all-stages (every stage "
        "pooled; the cpu recipe's)",
    ),
    Flag(
        "--backbone",
        "model",
        ("model.backbone",),
        "fixed",
        f"where features come from: {', '.join(BACKBONE_CHOICES)} (default auto for a person: "
        "a pretrained network whose weights are at hand, else rotnet; README, Which backbone)",
        metavar="NAME",
    ),
    Flag(
        "--backbone-weights",
        "model",
        ("model.backbone_weights",),
        "fixed",
        "the --backbone's weights as a local file (a state dict), for machines without internet",
        metavar="FILE",
        convert=resolved_path,
    ),
    Flag(
        "--fine-tune",
        "model",
        ("model.fine_tune",),
        "may change",
        f"fine-tune the pretrained backbone: {', '.join(FINE_TUNE_CHOICES)} (auto: where "
        "cross-validation on the labels says it wins, on a GPU; check: likewise on any device)",
        metavar="WHEN",
    ),
    Flag(
        "--fine-tune-steps",
        "model",
        ("model.fine_tune_steps",),
        "may change",
        "optimizer steps of one fine-tuning (default: 10 passes over the labels, 50 to 500)",
        whole_number,
        "N",
        bounds=Bounds(0, 10_000, "a thousand passes over 320 labels"),
    ),
    Flag(
        "--pretrain-epochs", "model", ("pretrain.epochs",), "fixed", type=whole_number, metavar="N"
    ),
    Flag(
        "--pretrain-steps",
        "model",
        ("pretrain.optim.min_steps",),
        "fixed",
        "optimizer steps pretraining takes at least, however few the images",
        whole_number,
        "N",
        bounds=Bounds(0, MAX_STEPS, "ten times the steps the paper recipe pretrains for"),
    ),
    Flag(
        "--batch-size",
        "model",
        ("pretrain.optim.batch_size", "active.optim.batch_size"),
        "may change",
        "images per training step",
        whole_number,
        "N",
    ),
    Flag(
        "--lr",
        "model",
        ("pretrain.optim.lr", "active.optim.lr"),
        "may change",
        "starting learning rate of every phase",
        float,
    ),
    Flag(
        "--eval-batch-size",
        "model",
        ("eval_batch_size",),
        "may change",
        "images per scoring and evaluation batch",
        whole_number,
        "N",
    ),
    Flag(
        "--compile",
        "model",
        ("speed.compile",),
        "may change",
        f"torch.compile the network: {', '.join(COMPILE_MODES)} (default off; costs a minute "
        "or more of compiling at the start, see BENCHMARKS.md)",
        metavar="MODE",
    ),
    # more than one GPU
    Flag(
        "--sync-bn",
        "parallel",
        ("parallel.sync_bn",),
        "may change",
        "BatchNorm statistics over the global batch, not each rank's share (GPUs only)",
        switch=True,
    ),
    Flag(
        "--group-timeout",
        "parallel",
        (),
        "launch",
        "seconds for the ranks to find each other, and for any one exchange "
        f"(default {DEFAULT_GROUP_TIMEOUT:.0f})",
        float,
        "S",
        bounds=Bounds(1.0, 86_400.0, "seconds: up to a day"),
    ),
    # active learning
    Flag(
        "--acquisition",
        "active",
        ("active.acquisition",),
        "may change",
        f"one of: {', '.join(ACQUISITIONS)} (default entropy)",
    ),
    Flag(
        "--initial-fraction",
        "active",
        ("active.initial_fraction",),
        "fixed",
        "share of the training set labeled from the ground truth at the start",
        float,
        "F",
    ),
    Flag(
        "--budget",
        "active",
        ("active.budget",),
        "may change",
        "stop when this share of the training set is labeled",
        float,
        "F",
    ),
    Flag(
        "--query-size",
        "active",
        ("active.query_size",),
        "may change",
        "items per query: a count (32) or a share of the training set (0.05)",
        float,
        "N|F",
    ),
    Flag(
        "--epochs-per-round",
        "active",
        ("active.epochs_per_round",),
        "may change",
        type=whole_number,
        metavar="N",
    ),
    Flag(
        "--round-steps",
        "active",
        ("active.optim.min_steps",),
        "may change",
        "optimizer steps a fine-tuning round takes at least, however few the labels",
        whole_number,
        "N",
        bounds=Bounds(0, MAX_STEPS, "ten times the steps the paper recipe pretrains for"),
    ),
    Flag(
        "--finetune-from",
        "active",
        ("active.finetune_from",),
        "may change",
        "training labels from which the whole network is fine-tuned; below, a round fits the "
        "head alone on frozen features (README, Recipes)",
        whole_number,
        "N",
    ),
    Flag(
        "--cross-validate-from",
        "active",
        ("active.cross_validate_from",),
        "may change",
        "below --finetune-from, from this many labels on, fine-tune where 3-fold "
        "cross-validation on the labels says it is not worse than the head (0: never)",
        whole_number,
        "N",
    ),
    Flag(
        "--cross-validate-below",
        "active",
        ("active.cross_validate_below",),
        "may change",
        "cross-validate that switch only on folders of fewer than this many training images "
        "(0: any size)",
        whole_number,
        "IMAGES",
    ),
    Flag(
        "--label-noise",
        "active",
        ("active.label_noise",),
        "fixed",
        "auto-oracle: flip this share of the initial labels to another class (seeded), to "
        "measure how well review finds them",
        float,
        "F",
    ),
    Flag(
        "--stop-when-flat",
        "active",
        ("active.stop_when_flat",),
        "may change",
        "stop once accuracy (test split or held-out labels) has not risen for R rounds",
        whole_number,
        "R",
    ),
    Flag(
        "--stop-when-stable",
        "active",
        ("active.stop_when_stable",),
        "may change",
        "stop once the predictions stop changing: Cohen's kappa between rounds on a fixed stop "
        "set, averaged over the last 3 rounds, at 0.99 or more",
        switch=True,
    ),
    Flag(
        "--pretrained",
        "active",
        ("model.pretrained",),
        "fixed",
        "start from this pretrain.pt instead of pretraining",
        Path,
        "PT",
        convert=resolved_path,
    ),
)
BY_NAME = {flag.name: flag for flag in FLAGS}
# A new run's labels: an existing run takes `salal-core import-labels` instead.
LABELS = Flag(
    "--labels",
    "active",
    (),
    "fixed",
    "labels you already have (path,class rows, or class/image), to start from",
    Path,
    "CSV|FOLDER",
)
