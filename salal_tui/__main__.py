"""`salal-tui`: label over SSH, or watch an auto-oracle reproduction run live."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from salal_core.cli.flags import check_bounds
from salal_core.cli.options import add_run_options, session_from_args
from salal_core.errors import RunInUse, SalalError

from .graphics import IMAGES_OPTIONS, Drawing, choose_drawing

if TYPE_CHECKING:  # imported when a run starts, not for --help
    from .app import SalalApp


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
    parser.add_argument("--name", help="your name in the run's journal (default: your login name)")
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
        return refuse(exc)
    app = ReviewApp(store, device, drawing, only)
    try:
        app.run()
    finally:
        store.close()
    if app.error:
        return refuse(app.error)
    print(
        f"{app.review.corrected} corrections saved in {run_dir}; the next "
        f"salal-tui --resume {run_dir} trains on them"
    )
    return 0


def join(args: argparse.Namespace, drawing: Drawing) -> int:
    """`salal-tui --join RUN_DIR`: one labeler of a served run; the engine runs in the
    service, and this app leases images from it."""
    from salal_core.run.labelers import checked_name, login_name

    from .app import SalalApp
    from .bridge import EventBridge
    from .desk import JoinedDesk

    alone = [f for f in ("out", "resume", "review", "labels") if getattr(args, f, None)]
    if args.auto_oracle or args.ranks != 1 or alone:
        flag = "--auto-oracle" if args.auto_oracle else f"--{(alone or ['ranks'])[0]}"
        return refuse(
            f"--join labels a served run; {flag} belongs to the service (salal-core serve)"
        )
    bridge = EventBridge()
    try:
        desk = JoinedDesk(args.join, checked_name(args.name or login_name()), bridge)
    except SalalError as exc:
        return refuse(exc)
    app = SalalApp(desk, bridge, False, desk, args.keys, drawing)
    app.run()
    if app.error:
        return refuse(app.error)
    print(f"your labels are saved in {desk.run_dir}; carry on with: {desk.carry_on}")
    return app.return_code or 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.color != "auto":
        # Read by Textual when it is imported, so set before the import below.
        os.environ["TEXTUAL_COLOR_SYSTEM"] = args.color
    try:  # before Textual starts: the terminal's answers come on stdin
        check_bounds(args)
        drawing = choose_drawing(args.images)
    except SalalError as exc:
        return refuse(exc)
    if args.review is not None:
        return review(args.review, args.device or "auto", drawing, args.labeler)
    if args.join is not None:
        return join(args, drawing)
    if args.labeler:
        return refuse("--labeler goes with --review RUN_DIR")
    return label(args, drawing)


def label(args: argparse.Namespace, drawing: Drawing) -> int:
    """`salal-tui` on a run of its own. A person labels through a private service, as any
    labeler of a served run does (others may `--join` it while it runs; it ends with this
    app); `--auto-oracle` runs its engine beside the app and watches."""
    from salal_core.run.labelers import checked_name, login_name
    from salal_core.team.endpoint import joinable

    from . import launch
    from .desk import as_labeler
    from .keys import KeyMap

    auto = args.auto_oracle
    try:
        name = checked_name(args.name or login_name())
        session = session_from_args(args, "auto" if auto else "human")
    except RunInUse as exc:
        return refuse(exc if auto else joinable(exc))  # a service holds it: join it
    except SalalError as exc:
        return refuse(exc)
    if args.keys is not None:  # before the screen is taken: a bad map is one line
        try:
            known = session.request.class_names or tuple(session.store.class_names())
            KeyMap.read(args.keys, known or None)
        except SalalError as exc:
            session.close()
            return refuse(exc)
    try:
        if auto:
            app = launch.watch(session, args.ranks, args.keys, drawing)
        else:
            app = launch.label_alone(session, name, args.ranks, args.keys, drawing)
    except SalalError as exc:  # no such device for --ranks, no socket: the run is let go
        return refuse(exc)
    app.run()
    carry_on = f"salal-tui --resume {session.run_dir}"
    return ended(app, session.run_dir, carry_on if auto else as_labeler(carry_on, name))


def ended(app: SalalApp, run_dir: Path, carry_on: str) -> int:
    if app.error:
        return refuse(app.error)
    print(f"labels saved in {run_dir}; carry on with: {carry_on}")
    return app.return_code or 0


def refuse(error: SalalError | str) -> int:
    """The one line of a refusal, and the exit status that goes with it."""
    print(f"salal-tui: error: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
