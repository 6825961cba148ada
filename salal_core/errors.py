"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class SalalError(Exception):
    """A problem the user can fix; the CLI prints it on one line and exits with status 2."""


class RunInUse(SalalError):
    """Another process holds the run directory's lock (its service, or a headless run)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"{run_dir} is in use by another salal process; wait for it or stop it")
        self.run_dir = run_dir


class RunNotShared(SalalError):
    """The run is another user's and not shared with this one: whose it is, and what to ask
    (a service of theirs with --socket-group lets their group join it; where it is shared
    with a group already, to be added to that group)."""

    def __init__(self, owner: str, group: str | None = None) -> None:
        ask = "ask them for --socket-group" if group is None else f"ask them to add you to {group}"
        shared = "" if group is None else f" and shared with the group {group}"
        super().__init__(f"this run belongs to {owner}{shared}; {ask}")
        self.owner, self.group = owner, group


class TrainingFailed(SalalError):
    """Training cannot go on. Judged on figures summed over every rank, so under torchrun each
    rank raises it at the same step and the group stays in step."""


class Collapsed(TrainingFailed):
    """Training collapsed to a constant prediction: the run stops, saved, and says why."""


class Diverged(TrainingFailed):
    """The loss is no longer a number: the weights are lost, and the run stops, saved."""


class OracleClosed(Exception):
    """The oracle was closed (the person quit); the loop stops cleanly after saving."""
