"""Spawning processes from inside an app.

A spawn needs multiprocessing's resource tracker, which starts by handing it our stderr; inside
a Textual app stderr is a capture object with no file behind it, and the spawn fails. Starting
the tracker while stderr is still the terminal's makes every later spawn work: the engine
process, its follower ranks and the review's probes.
"""

from __future__ import annotations

from multiprocessing import resource_tracker


def prepare_to_spawn() -> None:
    """Start the resource tracker now; call it before an app takes over stderr."""
    resource_tracker.ensure_running()
