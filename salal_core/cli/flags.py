"""The flag table (settings/table.py) onto argparse: each command's sections, the overrides a
command line makes, and its numbers checked against their bounds before anything starts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from salal_core.settings.flag import GROUP_TITLES, Group
from salal_core.settings.table import BY_NAME, FLAGS


def add_flags(parser: argparse.ArgumentParser, groups: Iterable[Group]) -> None:
    """The table's flags of `groups`, each group under its title."""
    for group in groups:
        section = parser.add_argument_group(GROUP_TITLES[group])
        for flag in FLAGS:
            if flag.group == group:
                flag.add_to(section)


def add_named(section: argparse._ActionsContainer, names: Iterable[str]) -> None:
    """Some of the table's flags, by name, into a command's own section."""
    for name in names:
        BY_NAME[name].add_to(section)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config keys for every flag the user actually gave."""
    out: dict[str, Any] = {}
    for flag in FLAGS:
        value = getattr(args, flag.dest, None)
        if value is not None:
            out.update({key: flag.convert(value) for key in flag.keys})
    return out


def check_bounds(args: argparse.Namespace) -> None:
    """Refuse, in one line, a number outside its flag's bounds, before anything starts."""
    for flag in FLAGS:
        value = getattr(args, flag.dest, None)
        if value is not None and flag.bounds is not None:
            flag.bounds.check(flag.name, value)
