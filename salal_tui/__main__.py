"""`salal-tui`: label over SSH, or watch an auto-oracle reproduction run live."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from salal_core.cli.flags import overrides_from_args
from salal_core.cli.options import (
    add_run_options,
    class_names_from_args,
    config_from_args,
    run_dir_from_args,
)
from salal_core.errors import SalalError

from .graphics import IMAGES_OPTIONS, Drawing, choose_drawing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salal-tui", description="Label the images a model is least sure of, in the terminal."
    )
    add_run_options(parser)
    parser.add_argument(
        "--auto-oracle", action="store_true", help="answer from the ground truth and watch the run"
    )
    parser.add_argument(
        "--color",
        choices=["auto", "truecolor", "256"],
        default="auto",
        help="force the colour depth (over SSH COLORTERM is often missing)",
    )
    parser.add_argument(
        "--images",
        choices=IMAGES_OPTIONS,
        default="auto",
        help="real pixels where the terminal speaks sixel or kitty graphics (auto), insist on "
        "them (pixels), or half-blocks (blocks)",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="your own class keys: one 'CODE CLASS' a line, a code of one or two keys",
    )
    parser.add_argument(
        "--ranks",
        type=int,
        default=1,
        metavar="N",
        help="train and score as N local processes: one per GPU, or N gloo processes on a CPU",
    )
    parser.add_argument(
        "--join",
        type=Path,
        metavar="RUN_DIR",
        help="label a run that salal-core serve holds, beside others (or its forwarded socket)",
    )
    parser.add_argument(
        "--name", help="your name in the run's journal, with --join (default: your login name)"
    )
    parser.add_argument(
        "--review",
        type=Path,
        metavar="RUN_DIR",
        help="go over a run's labels, the most doubtful first, and correct them",
    )
    parser.add_argument(
        "--labeler",
        default="",
        metavar="NAME",
        help="with --review: go over one labeler's own answers",
    )
    return parser


def review(run_dir: Path, device: str, drawing: Drawing, only: str = "") -> int:
    """`salal-tui --review RUN_DIR`: no engine runs; the run is locked while it is reviewed."""
    from salal_core.run.store import RunStore

    from .review_app import ReviewApp

    try:
        store = RunStore(run_dir, create=False)
    except SalalError as exc:
        print(f"salal-tui: error: {exc}", file=sys.stderr)
        return 2
    app = ReviewApp(store, device, drawing, only)
    try:
        app.run()
    finally:
        store.close()
    if app.error:
        print(f"salal-tui: error: {app.error}", file=sys.stderr)
        return 2
    print(
        f"{app.review.corrected} corrections saved in {run_dir}; the next "
        f"salal-tui --resume {run_dir} trains on them"
    )
    return 0


def join(args: argparse.Namespace, drawing: Drawing) -> int:
    """`salal-tui --join RUN_DIR`: one labeler of a served run; the engine runs in the
    service, and this app leases images from it."""
    from salal_core.team.labelers import checked_name, login_name

    from .app import SalalApp
    from .bridge import EventBridge
    from .desk import JoinedDesk

    alone = [f for f in ("out", "resume", "review", "labels") if getattr(args, f, None)]
    if args.auto_oracle or args.ranks != 1 or alone:
        flag = "--auto-oracle" if args.auto_oracle else f"--{(alone or ['ranks'])[0]}"
        print(
            f"salal-tui: error: --join labels a served run; {flag} belongs to the service "
            "(salal-core serve)",
            file=sys.stderr,
        )
        return 2
    bridge = EventBridge()
    try:
        desk = JoinedDesk(args.join, checked_name(args.name or login_name()), bridge)
    except SalalError as exc:
        print(f"salal-tui: error: {exc}", file=sys.stderr)
        return 2
    app = SalalApp(desk, bridge, False, desk, args.keys, drawing)
    app.run()
    if app.error:
        print(f"salal-tui: error: {app.error}", file=sys.stderr)
        return 2
    print(f"your labels are saved in {desk.run_dir}; carry on with: {desk.carry_on}")
    return app.return_code or 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.color != "auto":
        # Read by Textual when it is imported, so set before the import below.
        os.environ["TEXTUAL_COLOR_SYSTEM"] = args.color
    try:  # before Textual starts: the terminal's answers come on stdin
        drawing = choose_drawing(args.images)
    except SalalError as exc:
        print(f"salal-tui: error: {exc}", file=sys.stderr)
        return 2
    if args.review is not None:
        return review(args.review, args.device or "auto", drawing, args.labeler)
    if args.join is not None:
        return join(args, drawing)
    if args.name is not None or args.labeler:
        wrong = (
            "--name goes with --join" if args.name is not None else "--labeler goes with --review"
        )
        print(f"salal-tui: error: {wrong} RUN_DIR", file=sys.stderr)
        return 2
    from salal_core.parallel.distributed import check_local_ranks
    from salal_core.parallel.worker import EngineProcess
    from salal_core.run.factory import open_session
    from salal_core.runtime import resolve_device

    from .app import SalalApp
    from .bridge import EventBridge
    from .keys import KeyMap

    bridge = EventBridge()
    auto = args.auto_oracle
    try:
        run_dir, resume = run_dir_from_args(args)
        session = open_session(
            None if resume else config_from_args(args, human=not auto),
            run_dir,
            oracle="auto" if auto else "human",
            resume=resume,
            overrides=overrides_from_args(args) if resume else None,
            class_names=class_names_from_args(args),
            labels_file=args.labels,
        )
    except SalalError as exc:
        print(f"salal-tui: error: {exc}", file=sys.stderr)
        return 2
    try:
        check_local_ranks(args.ranks, resolve_device(session.config.device))
        if args.keys is not None:  # before the screen is taken: a bad map is one line
            known = session.request.class_names or tuple(session.store.class_names())
            KeyMap.read(args.keys, known or None)
    except SalalError as exc:
        session.close()
        print(f"salal-tui: error: {exc}", file=sys.stderr)
        return 2
    engine = EngineProcess(session, bridge, ranks=args.ranks)
    app = SalalApp(session, bridge, auto, engine, args.keys, drawing)
    app.run()
    if app.error:
        print(f"salal-tui: error: {app.error}", file=sys.stderr)
        return 2
    print(f"labels saved in {run_dir}; carry on with: salal-tui --resume {run_dir}")
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
