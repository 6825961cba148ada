"""`salal-core serve`: one run as a local service that several labelers join.

It holds the run (its lock, journal, queue and engine) and listens on a Unix socket in the
run directory; each `salal-tui --join RUN_DIR` is a labeler. It runs until it is stopped
(Ctrl-C or SIGTERM: the engine saves and stops, and it says how to carry on; a second one
ends it at once), or until the run has ended and every labeler has left.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from salal_core.cli.commands.agreement import run_agreement, show
from salal_core.cli.options import Subparsers, add_run_options, session_from_args
from salal_core.cli.progress import RichProgress
from salal_core.errors import RunInUse, SalalError
from salal_core.team import endpoint

if TYPE_CHECKING:  # imported when a run is served, not for --help
    from salal_core.team.hosted import HostedRun

LEAVE_CHECK = 0.5  # seconds between looks at whether every labeler has left a finished run


def cmd_serve(args: argparse.Namespace) -> int:
    from salal_core.team.endpoint import joinable
    from salal_core.team.hosted import HostedRun

    if args.run_dir is not None:
        if args.out is not None or args.resume is not None:
            raise SalalError("give the run directory once: RUN_DIR, --out or --resume")
        args.resume = args.run_dir
    if args.overlap is not None and args.overlap < 1:
        raise SalalError(f"--overlap {args.overlap}: give how many labelers answer each image")
    if args.lease <= 0:
        raise SalalError(f"--lease {args.lease}: give the seconds a labeler may sit idle")
    try:
        session = session_from_args(args, "human")
    except RunInUse as exc:  # served already, most likely: say how to join it
        raise joinable(exc) from None
    run_dir = session.run_dir
    carry_on = f"every answer given is saved; carry on with: salal-core serve {run_dir}"
    stopping = threading.Event()
    held: list[HostedRun] = []  # the service, once it listens
    with RichProgress() as progress:

        def stop(signum: int, frame: FrameType | None) -> None:
            if stopping.is_set():  # a second signal: at once (the journal survives a kill)
                stop_at_once(signum, held, carry_on)
            # Not through the console: the signal may have interrupted it mid-print, even
            # mid-import of what its markup needs (a traceback, seen in CI).
            say_from_handler(
                "stopping: the engine saves, then the service ends (Ctrl-C again: at once)"
            )
            stopping.set()
            for hosted in held:
                hosted.stop()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            hosted = HostedRun(
                session,
                progress,
                lambda line: progress.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {line}"),
                overlap=args.overlap,
                lease_seconds=args.lease,
                socket_group=args.socket_group,
                ranks=args.ranks,
            )
            held.append(hosted)
            if stopping.is_set():  # stopped while it started: the engine stops as it begins
                hosted.stop()
            progress.console.print(
                f"serving {run_dir} on {hosted.socket_path} (overlap {hosted.queue.overlap}); "
                f"each labeler joins with: salal-tui --join {run_dir}"
            )
            try:
                serve(hosted, stopping, progress)
            finally:
                hosted.close()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if stopping.is_set():
            progress.console.print(f"stopped; {carry_on}")
    return 0


def stop_at_once(signum: int, held: list[HostedRun], carry_on: str) -> NoReturn:
    """A second Ctrl-C or SIGTERM: one line, the socket off the disk, and out with the
    signal's status. From a signal handler, so nothing here takes a lock (the console's, the
    service's) that the thread it interrupted may hold; the journal survives the exit."""
    say_from_handler(f"stopped at once; {carry_on}")
    for hosted in held:
        endpoint.remove(hosted.session.run_dir, hosted.socket_path)
    os._exit(128 + signum)


def say_from_handler(line: str) -> None:
    """One line on stderr from a signal handler: a plain write, no lock and no import (the
    thread the signal interrupted may hold the console's), the cursor shown again where the
    progress bars hid it."""
    cursor = "\x1b[?25h" if os.isatty(2) else ""
    os.write(2, f"{cursor}\n{line}\n".encode())


def serve(hosted: HostedRun, stopping: threading.Event, progress: RichProgress) -> None:
    """Run the engine to its end or a stop; then, the run over, wait for the labelers to go."""
    summary = hosted.run()
    if summary is not None and not stopping.is_set():
        progress.console.print(
            f"the run has finished: {summary.labeled:,} labeled; "
            f"{summary.stop_detail or summary.stop_reason}"
        )
        show(*run_agreement(hosted.session.run_dir), progress.console)  # who labeled what
    while hosted.service.connected() and not stopping.is_set():
        stopping.wait(LEAVE_CHECK)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="one run as a service that several labelers join")
    p.add_argument(
        "run_dir", nargs="?", type=Path, metavar="RUN_DIR", help="an existing run to serve"
    )
    add_run_options(p)
    p.add_argument(
        "--overlap",
        type=int,
        metavar="K",
        help="how many labelers answer each image (kept in the run; 1 to start)",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="an idle labeler's images go back to the queue after this long",
    )
    p.add_argument(
        "--socket-group",
        action="store_true",
        help="let the run directory's group join too (else only its owner)",
    )
    p.add_argument("--ranks", type=int, default=1, metavar="N", help="engine processes")
    p.set_defaults(func=cmd_serve)
