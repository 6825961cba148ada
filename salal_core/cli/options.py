"""Command-line options shared by `salal-core run` and `salal-tui`, turned into a RunConfig."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salal_core.config import (
    COMPILE_MODES,
    HUMAN_ACTIVE,
    HUMAN_EPOCHS_PER_ROUND,
    PRESETS,
    RunConfig,
    preset,
    with_overrides,
)
from salal_core.errors import SalalError
from salal_core.parallel.distributed import DEFAULT_GROUP_TIMEOUT
from salal_core.selection.acquire import ACQUISITIONS

if TYPE_CHECKING:  # argparse's class is generic to type checkers only
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction
Register = Callable[[Subparsers], None]  # a command adding its parser


def add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="PATH",
        help="cifar-10-python.tar.gz, cifar-10-batches-py/, an image folder or a "
        ".tar/.tar.gz of one (default: download CIFAR-10)",
    )
    g.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="decode and download cache (default: the platform's user cache)",
    )
    g.add_argument(
        "--train-limit",
        type=int,
        metavar="N",
        help="use a seeded, class-balanced slice of N training images",
    )
    g.add_argument("--test-limit", type=int, metavar="N", help="likewise for the test split")
    g.add_argument("--image-size", type=int, metavar="PX", help="side the model sees (32)")
    g.add_argument(
        "--classes", metavar="A,B,...", help="class names for a folder of unlabeled images"
    )
    g.add_argument("--classes-file", metavar="FILE", help="class names, one a line")


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    # No argparse `choices`: an unknown preset gets salal's one-line error and exit status 2.
    g.add_argument(
        "--preset", help=f"recipe: {', '.join(PRESETS)} (default fast on a GPU, cpu without)"
    )
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--device", default=None, help="auto, cuda or cpu (default auto)")
    g.add_argument("--width", type=int, help="network width; 64 is ResNet18")
    g.add_argument("--pretrain-epochs", type=int, metavar="N")
    g.add_argument(
        "--pretrain-steps",
        type=int,
        metavar="N",
        help="optimizer steps pretraining takes at least, however few the images",
    )
    g.add_argument("--batch-size", type=int, metavar="N", help="images per training step")
    g.add_argument("--lr", type=float, help="starting learning rate of every phase")
    g.add_argument(
        "--eval-batch-size", type=int, metavar="N", help="images per scoring and evaluation batch"
    )
    g.add_argument(
        "--compile",
        metavar="MODE",
        help=f"torch.compile the network: {', '.join(COMPILE_MODES)} (default off; costs "
        "a minute or more of compiling at the start, see BENCHMARKS.md)",
    )
    add_group_options(p)


def add_group_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("more than one GPU (under torchrun; README, More than one GPU)")
    g.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="BatchNorm statistics over the global batch, not each rank's share (GPUs only)",
    )
    g.add_argument(
        "--group-timeout",
        type=float,
        metavar="S",
        help=f"seconds for the ranks to find each other, and for any one exchange "
        f"(default {DEFAULT_GROUP_TIMEOUT:.0f})",
    )


def add_active_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("active learning")
    g.add_argument("--acquisition", help=f"one of: {', '.join(ACQUISITIONS)} (default entropy)")
    g.add_argument(
        "--initial-fraction",
        type=float,
        metavar="F",
        help="share of the training set labeled from the ground truth at the start",
    )
    g.add_argument(
        "--budget",
        type=float,
        metavar="F",
        help="stop when this share of the training set is labeled",
    )
    g.add_argument(
        "--query-size",
        type=float,
        metavar="N|F",
        help="items per query: a count (32) or a share of the training set (0.05)",
    )
    g.add_argument("--epochs-per-round", type=int, metavar="N")
    g.add_argument(
        "--round-steps",
        type=int,
        metavar="N",
        help="optimizer steps a fine-tuning round takes at least, however few the labels",
    )
    g.add_argument(
        "--finetune-from",
        type=int,
        metavar="N",
        help="training labels from which the whole network is fine-tuned; below, a round fits "
        "the head alone on frozen features (README, Recipes)",
    )
    g.add_argument(
        "--label-noise",
        type=float,
        metavar="F",
        help="auto-oracle: flip this share of the initial labels to another class (seeded), "
        "to measure how well review finds them",
    )
    g.add_argument(
        "--stop-when-flat",
        type=int,
        metavar="R",
        help="stop once accuracy (test split or held-out labels) has not risen for R rounds",
    )
    g.add_argument(
        "--stop-when-stable",
        action="store_true",
        default=None,
        help="stop once the predictions stop changing: Cohen's kappa between rounds on a fixed "
        "stop set, averaged over the last 3 rounds, at 0.99 or more",
    )
    g.add_argument(
        "--pretrained",
        type=Path,
        metavar="PT",
        help="start from this pretrain.pt instead of pretraining",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    add_data_options(p)
    add_model_options(p)
    add_active_options(p)
    g = p.add_argument_group("run directory")
    g.add_argument("--out", type=Path, metavar="RUN_DIR", help="where the run is written")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR", help="carry on a stopped run")
    g.add_argument(
        "--labels",
        type=Path,
        metavar="CSV|FOLDER",
        help="labels you already have (path,class rows, or class/image), to start from",
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config keys for every flag the user actually gave."""

    def get(name: str) -> Any:
        return getattr(args, name, None)

    batch, lr = get("batch_size"), get("lr")
    pretrained = get("pretrained")
    out = {
        "preset": get("preset"),
        "seed": get("seed"),
        "device": get("device"),
        "eval_batch_size": get("eval_batch_size"),
        "data.source": str(Path(get("data")).expanduser().resolve()) if get("data") else None,
        "data.cache_dir": str(Path(get("cache_dir")).resolve()) if get("cache_dir") else None,
        "data.train_limit": get("train_limit"),
        "data.test_limit": get("test_limit"),
        "data.image_size": get("image_size"),
        "model.width": get("width"),
        "model.pretrained": str(Path(pretrained).expanduser().resolve()) if pretrained else None,
        "pretrain.epochs": get("pretrain_epochs"),
        "pretrain.optim.min_steps": get("pretrain_steps"),
        "active.optim.min_steps": get("round_steps"),
        "active.finetune_from": get("finetune_from"),
        "active.stop_when_stable": get("stop_when_stable"),
        "pretrain.optim.batch_size": batch,
        "pretrain.optim.lr": lr,
        "active.optim.batch_size": batch,
        "active.optim.lr": lr,
        "active.acquisition": get("acquisition"),
        "active.initial_fraction": get("initial_fraction"),
        "active.budget": get("budget"),
        "active.query_size": get("query_size"),
        "active.epochs_per_round": get("epochs_per_round"),
        "active.stop_when_flat": get("stop_when_flat"),
        "active.label_noise": get("label_noise"),
        "speed.compile": get("compile"),
        "parallel.sync_bn": get("sync_bn"),
    }
    return {k: v for k, v in out.items() if v is not None}


def human_defaults(config: RunConfig) -> dict[str, Any]:
    """A person answers a few dozen images between short fine-tuning rounds."""
    out = {f"active.{k}": v for k, v in HUMAN_ACTIVE.items()}
    out["active.epochs_per_round"] = HUMAN_EPOCHS_PER_ROUND.get(config.preset, 2)
    return out


def default_preset(device: str | None) -> str:
    """`fast` where the run will have CUDA; without it, the recipe sized for a CPU."""
    import torch

    name = device or "auto"
    cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    return "fast" if cuda else "cpu"


def config_from_args(args: argparse.Namespace, human: bool = False) -> RunConfig:
    base = preset(args.preset or default_preset(getattr(args, "device", None)))
    overrides = human_defaults(base) if human else {}
    overrides.update(overrides_from_args(args))
    return with_overrides(base, overrides)


def parse_name_list(text: str, choices: Sequence[str], what: str) -> list[str]:
    """Comma-separated names, each one of `choices`; anything else is a one-line error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in choices]
    if unknown or not names:
        raise SalalError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from: {', '.join(choices)}"
        )
    return names


def class_names_from_args(args: argparse.Namespace) -> list[str] | None:
    if getattr(args, "classes_file", None):
        path = Path(args.classes_file)
        try:
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise SalalError(f"cannot read --classes-file {path} ({exc.strerror})") from None
    elif getattr(args, "classes", None):
        names = [n.strip() for n in args.classes.split(",") if n.strip()]
    else:
        return None
    if len(names) < 2 or len(set(names)) != len(names):
        raise SalalError("--classes needs at least two distinct names, e.g. --classes cat,dog")
    return names


def run_dir_from_args(args: argparse.Namespace) -> tuple[Path, bool]:
    if args.resume and args.out and args.out != args.resume:
        raise SalalError("give either --out (a new run) or --resume (an existing one), not both")
    if args.resume:
        return args.resume, True
    if args.out:
        return args.out, False
    raise SalalError("say where the run goes with --out RUN_DIR (or --resume RUN_DIR)")
