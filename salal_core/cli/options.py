"""Command-line options shared by `salal-core run` and `salal-tui`, turned into a RunConfig.

The flags themselves are rows of `settings/table.py`; this module groups them into parsers
and reads the run directory, the classes and the preset from what was parsed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salal_core.backbones.catalog import AUTO
from salal_core.cli.flags import add_flags, overrides_from_args
from salal_core.config import (
    HUMAN_ACTIVE,
    HUMAN_EPOCHS_PER_ROUND,
    RunConfig,
    preset,
    with_overrides,
)
from salal_core.errors import SalalError
from salal_core.settings.table import LABELS

if TYPE_CHECKING:  # argparse's class is generic to type checkers only
    from salal_core.run.session import Session
    from salal_core.run.summary import OracleKind

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction
Register = Callable[[Subparsers], None]  # a command adding its parser


def add_data_options(p: argparse.ArgumentParser) -> None:
    add_flags(p, ["data"])


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The recipe's flags, and those of a torchrun group."""
    add_flags(p, ["model", "parallel"])


def add_active_options(p: argparse.ArgumentParser) -> None:
    add_flags(p, ["active"])


def add_run_options(p: argparse.ArgumentParser) -> None:
    add_flags(p, ["data", "model", "parallel", "active"])
    g = p.add_argument_group("run directory")
    g.add_argument("--out", type=Path, metavar="RUN_DIR", help="where the run is written")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR", help="carry on a stopped run")
    LABELS.add_to(g)


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
    """The preset, a person's defaults where a person answers, then the flags. Without
    --preset, features come from a pretrained backbone where one is at hand (`auto`); the
    reproduction presets keep rotnet unless --backbone says otherwise."""
    base = preset(args.preset or default_preset(getattr(args, "device", None)))
    overrides: dict[str, Any] = human_defaults(base) if human else {}
    if args.preset is None:
        overrides["model.backbone"] = AUTO
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


def session_from_args(
    args: argparse.Namespace, oracle: OracleKind, resume: bool | None = None
) -> Session:
    """The run the command line names, opened by the one factory: a new one from the flags
    (a person's defaults where a person answers), or `--resume` with the overrides a resume
    may take. `resume` True carries on a run whatever the flags say (a restarted group)."""
    from salal_core.run.factory import open_session  # the engine's imports: not for --help

    run_dir, resumed = run_dir_from_args(args)
    resume = resumed if resume is None else resume
    return open_session(
        None if resume else config_from_args(args, human=oracle == "human"),
        run_dir,
        oracle=oracle,
        resume=resume,
        overrides=overrides_from_args(args) if resume else None,
        class_names=class_names_from_args(args),
        labels_file=args.labels,
    )
