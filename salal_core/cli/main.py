"""`salal-core`: the engine headless, for scripts and clusters.

salal-core run      active learning with the ground truth as oracle
salal-core pretrain rotation pretraining alone
salal-core compare  acquisition functions side by side over seeds
salal-core export   the labels of a run as CSV or JSON
salal-core predict  the model's class for every unlabeled image
salal-core serve    one run as a service that several labelers join
salal-core agreement how far a run's labelers agree
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from salal_core import __version__, distributed, json_text
from salal_core.cli.flags import check_bounds
from salal_core.cli.options import (
    Register,
    add_data_options,
    add_model_options,
    add_run_options,
    run_dir_from_args,
    session_from_args,
)
from salal_core.cli.progress import RichProgress
from salal_core.config_io import load_toml
from salal_core.errors import SalalError
from salal_core.run import group
from salal_core.runtime import resolve_device


def counted(n: int, noun: str) -> str:
    """'1 round', '3 rounds'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_run(args: argparse.Namespace) -> int:
    from salal_core.run.engine import Engine

    run_dir, resume = run_dir_from_args(args)
    if distributed.restarted() and (run_dir / "salal.db").exists():
        # torchrun --max-restarts started the group again with the same command line: carry on
        # the run it was writing, as --resume does.
        resume = True
    with RichProgress(quiet=args.json) as progress:
        session = session_from_args(args, "auto", resume)
        summary = Engine.for_session(session, progress).run()
    if summary.stop_reason == "collapsed":  # saved, and said: but the run did not work
        print(f"salal-core: error: {summary.stop_detail}", file=sys.stderr)
        return 2
    if args.json:
        out = summary.to_json()
        del out["config"]
        print(json_text.dumps(out))
    else:
        acc = summary.final_accuracy
        measured = "test" if summary.accuracy_source == "test" else "held-out"
        share = summary.labeled / max(summary.train_size, 1)
        skipped = len(summary.skipped_files)
        named = f"; {counted(skipped, 'file')} skipped (named in summary.json)" if skipped else ""
        print(
            f"{summary.labeled:,} labeled ({share:.0%}) in "
            f"{counted(len(summary.curve), 'round')} on {summary.features}: {measured} accuracy "
            f"{'-' if acc is None else f'{acc:.4f}'} ({summary.seconds:.0f} s) -> "
            f"{run_dir}/summary.json"
            + ("" if summary.stop_reason == "budget" else f"; stopped: {summary.stop_detail}")
            + named
        )
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from salal_core.cli.commands.pretrain import run_pretrain

    result = run_pretrain(args)
    if args.json:
        print(json_text.dumps(result))
    else:
        print(
            f"rotation accuracy {result['rotation_accuracy']:.4f} after "
            f"{counted(result['epochs'], 'epoch')} ({result['seconds']:.1f} s, "
            f"{result['images_per_second']:,.0f} img/s) "
            f"-> {result['checkpoint']}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salal-core",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"salal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="active learning, the ground truth answering")
    add_run_options(run)
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    pre = sub.add_parser("pretrain", help="rotation pretraining alone")
    add_data_options(pre)
    add_model_options(pre)
    pre.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    pre.add_argument("--json", action="store_true", help="print the result as JSON")
    pre.set_defaults(func=cmd_pretrain)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Register]:
    from salal_core.cli.commands import REGISTER

    return REGISTER


GROUP_COMMANDS = ("run", "pretrain", "compare")  # the ones torchrun spreads over its ranks


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    world = None
    in_step = False  # every rank ends this command the same way: they may wait for each other
    try:
        check_bounds(args)
        if distributed.launched():
            if args.command not in GROUP_COMMANDS:
                # Reading and writing files is one process's work: rank 0 does it alone.
                alone: int = args.func(args) if distributed.rank_from_env() == 0 else 0
                return alone
            world = distributed.join(group_device(args), args.group_timeout)
            if not world.is_main:
                followed = group.follow(world)
                in_step = True
                return followed
        code: int = args.func(args)
        sys.stdout.flush()  # here, so that a reader gone (`| head`) is met below
        in_step = group.finish(code)
        return code
    except BrokenPipeError:
        # The reader of stdout has all it wanted: nothing more to say, nor anywhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SalalError as exc:
        where = "" if world is None or world.is_main else f"rank {world.rank}: "
        print(f"salal-core: error: {where}{exc}", file=sys.stderr)
        if world is None or world.is_main:
            in_step = group.finish(2)
        return 2
    except KeyboardInterrupt:
        print(
            "salal-core: interrupted; every label so far is saved (carry on with --resume)",
            file=sys.stderr,
        )
        return 130
    finally:
        distributed.leave(in_step)


def group_device(args: argparse.Namespace) -> torch.device:
    """The device this command's run will use, known before the run is opened: --device, or
    what a resumed run (or one torchrun restarted) was created with."""
    name = args.device
    if name is None and args.command == "run":
        run_dir = args.resume or args.out
        if run_dir is not None and (Path(run_dir) / "config.toml").exists():
            name = load_toml(Path(run_dir) / "config.toml").device
    return resolve_device(name or "auto")


if __name__ == "__main__":
    sys.exit(main())
