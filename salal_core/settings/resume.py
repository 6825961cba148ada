"""What `--resume` may change, and what was fixed when the run was created.

The checkpoint and the journal, not the command line, decide what the model and the data are
(nanoGPT does the same on resume). A fixed flag given again with the value the run already has
is accepted, so the command that created a run can be run again to carry it on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from salal_core.config import RunConfig
from salal_core.errors import SalalError
from salal_core.settings.flag import Resume
from salal_core.settings.table import FLAGS, LABELS


def resume_list(resume: Resume) -> dict[str, tuple[str, ...]]:
    """Flag -> the settings it writes, for the flags under one resume rule."""
    rows = [*FLAGS, LABELS]
    return {flag.name: flag.keys for flag in rows if flag.resume == resume}


# flag -> the settings it writes (dotted keys of RunConfig), from the one flag table
MAY_CHANGE = resume_list("may change")
FIXED = resume_list("fixed")


def setting(config: RunConfig, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def check_resume(
    stored: RunConfig,
    overrides: Mapping[str, Any],
    class_names: Sequence[str] | None,
    stored_classes: Sequence[str],
) -> dict[str, Any]:
    """Refuse a fixed flag whose value differs from the run's; return the changes allowed."""
    for flag, keys in FIXED.items():
        for key in keys:
            if key in overrides and overrides[key] != setting(stored, key):
                raise SalalError(
                    f"{flag} was fixed when this run was created ({setting(stored, key)!r}, not "
                    f"{overrides[key]!r}); drop {flag} to carry the run on, or start a new run "
                    "with --out"
                )
    if class_names and stored_classes and list(class_names) != list(stored_classes):
        raise SalalError(
            f"--classes was fixed when this run was created ({','.join(stored_classes)}); "
            "drop it to carry the run on, or start a new run with --out"
        )
    allowed = {key for keys in MAY_CHANGE.values() for key in keys}
    fixed = {key for keys in FIXED.values() for key in keys}
    unknown = set(overrides) - allowed - fixed
    if unknown:  # a flag in neither list is a bug in this module, not the user's mistake
        raise ValueError(f"settings in neither resume list: {sorted(unknown)}")
    return {k: v for k, v in overrides.items() if k in allowed}
