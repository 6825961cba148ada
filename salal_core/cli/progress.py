"""Headless progress: rich bars fed by the engine's events, on stderr so stdout stays clean."""

from __future__ import annotations

import math
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from salal_core.events import (
    DataLoaded,
    EmbeddingProgress,
    EpochEnded,
    Event,
    LabelsAdded,
    Notice,
    PhaseStarted,
    RoundEnded,
    StepProgress,
)


def _fmt(x: float) -> str:
    return "  -  " if x is None or math.isnan(x) else f"{x:.3f}"


class RichProgress:
    """An emit sink: one bar per training phase, a line per round, notices in colour."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=quiet,
        )
        self.started = False
        self.task: TaskID | None = None
        self.epochs = 0
        self.steps = 0
        self.measured_on = "test"  # "held-out" once the data says there is no test split

    def __enter__(self) -> RichProgress:
        """The bars start with the first phase, so a run that fails before one prints only
        its one-line error (a started, empty display would leave a blank line above it)."""
        return self

    def __exit__(
        self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.started:  # Rich's stop prints a newline even for bars that never started
            self.progress.stop()

    def _new_task(self, name: str, total: int) -> None:
        """A bar of its own for the next phase; the last one's stays, hidden."""
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        if not self.started:
            self.progress.start()
            self.started = True
        self.task = self.progress.add_task(name, total=total, stats="")

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            style = "yellow" if event.level == "warning" else "cyan"
            self.progress.console.print(f"[{style}]{event.message}")
        elif self.quiet:
            return
        elif isinstance(event, DataLoaded):
            origin = "cache" if event.from_cache else "decoded"
            self.measured_on = "test" if event.test_size else "held-out"
            self.progress.console.print(
                f"data: {event.train_size:,} train / {event.test_size:,} test images, "
                f"{len(event.class_names)} classes ({origin} in {event.seconds:.1f} s)"
            )
        elif isinstance(event, EmbeddingProgress):
            if event.done == 0:
                self._new_task(f"embed {event.backbone}", event.total)
            elif self.task is not None:
                rate = event.done / max(event.seconds, 1e-9)
                self.progress.update(self.task, completed=event.done, stats=f"{rate:.1f} img/s")
        elif isinstance(event, PhaseStarted):
            name = "pretrain" if event.phase == "pretrain" else f"round {event.round}"
            self.epochs, self.steps = event.epochs, event.steps_per_epoch
            self._new_task(name, event.epochs * event.steps_per_epoch)
        elif isinstance(event, StepProgress) and self.task is not None:
            self.progress.update(self.task, completed=(event.epoch - 1) * self.steps + event.step)
        elif isinstance(event, EpochEnded) and self.task is not None:
            what = "rot acc" if event.phase == "pretrain" else f"{self.measured_on} acc"
            self.progress.update(
                self.task,
                completed=event.epoch * self.steps,
                stats=f"epoch {event.epoch}/{event.epochs} loss {_fmt(event.loss)} "
                f"{what} {_fmt(event.test_accuracy)} {event.images_per_second:,.0f} img/s",
            )
        elif isinstance(event, LabelsAdded):
            self.progress.console.print(
                f"  +{len(event.indices)} labels ({event.oracle}): {event.labeled:,}/"
                f"{event.target:,}"
            )
        elif isinstance(event, RoundEnded):
            gained = "" if math.isnan(event.gained) else f" ({event.gained:+.3f})"
            kappa = "" if math.isnan(event.kappa) else f", kappa {event.kappa:.3f}"
            if event.head_input not in ("", "rotnet"):
                kappa += f", head on {event.head_input}"
            self.progress.console.print(
                f"round {event.round}: {event.labeled:,} labeled -> {self.measured_on} accuracy "
                f"{_fmt(event.test_accuracy)}{gained}{kappa}"
            )
