"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations


class SalalError(Exception):
    """A problem the user can fix; the CLI prints it on one line and exits with status 2."""


class Collapsed(SalalError):
    """Training collapsed to a constant prediction: the run stops, saved, and says why."""


class OracleClosed(Exception):
    """The oracle was closed (the person quit); the loop stops cleanly after saving."""
