"""One flag that sets a run's configuration: its name, the config keys it writes, its type,
bounds and help, and whether `--resume` may change it (the rows of settings/table.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from salal_core.settings.bounds import Bounds

Group = Literal["data", "model", "parallel", "active"]
# "may change": --resume accepts a new value; "fixed": set when the run was created, and a
# different value on resume is refused in one line; "launch": how to run, not what (like
# torchrun's own flags), so it is neither.
Resume = Literal["may change", "fixed", "launch"]

GROUP_TITLES: dict[Group, str] = {
    "data": "data",
    "model": "model and training",
    "parallel": "more than one GPU (under torchrun; README, More than one GPU)",
    "active": "active learning",
}


def resolved_path(value: Any) -> str:
    """A path as the run stores it: absolute, so that a resume from elsewhere finds it."""
    return str(Path(value).expanduser().resolve())


def unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Flag:
    name: str  # "--query-size"
    group: Group
    keys: tuple[str, ...]  # the RunConfig settings it writes (dotted); () when it is none
    resume: Resume
    help: str | None = None
    type: Callable[[str], Any] = str
    metavar: str | None = None
    switch: bool = False  # present or absent, no value
    convert: Callable[[Any], Any] = unchanged  # the parsed value into the config's
    bounds: Bounds | None = None  # a number's lowest and highest values

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")

    def add_to(self, parser: argparse._ActionsContainer) -> None:
        if self.switch:
            parser.add_argument(self.name, action="store_true", default=None, help=self.help)
        else:
            parser.add_argument(self.name, type=self.type, metavar=self.metavar, help=self.help)
