"""salal-tui in a real terminal: tmux runs it at 120x40 and types twenty labels as fast as it can
send them; every one must be in the run directory, in the order typed, with the class typed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import tiny_cli
from salal_core.run.store import RunStore

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (.ci/run installs it)")
KEYS = "12341234432143211234"  # twenty labels over the four classes; key 1 is class 0


class Pane:
    """One tmux server of our own (its own socket), one session, one pane."""

    def __init__(self, command: list[str], size: tuple[int, int] = (120, 40)) -> None:
        self.socket = f"salal-test-{os.getpid()}"
        shell = f"cd {shlex.quote(os.getcwd())} && exec {shlex.join(command)}"  # draws on stderr
        self.tmux("new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]), shell)

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "t").returncode == 0

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            assert self.alive(), "salal-tui exited early"
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the pane shows:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")


def journal_rows(run_dir: Path) -> list[tuple[int, int]]:
    store = RunStore(run_dir, create=False, lock=False)
    try:
        rows = store.journal_rows()
    finally:
        store.close()
    return [(r.item, int(r.label)) for r in rows if r.oracle == "human" and r.label is not None]


def asked_order(run_dir: Path) -> list[int]:
    store = RunStore(run_dir, create=False, lock=False)
    try:
        return [q.item for q in store.questions.open()]
    finally:
        store.close()


def test_twenty_labels_typed_as_fast_as_tmux_sends_them(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = tiny_cli("salal_tui", synthetic_pack, out, tmp_path / "c", "--pretrain-epochs", "1")
    pane = Pane([sys.executable, "-m", *command])
    try:
        pane.wait_for("image #")
        assert len(asked_order(out)) >= len(KEYS)  # a human-sized query is waiting
        pane.tmux("send-keys", "-t", "t", "-l", KEYS)  # one write: as fast as tmux can
        deadline = time.monotonic() + 60
        while len(journal_rows(out)) < len(KEYS) and time.monotonic() < deadline:
            time.sleep(0.1)
        rows = journal_rows(out)
        assert [label for _, label in rows] == [int(k) - 1 for k in KEYS]
        assert [index for index, _ in rows] == asked_order(out)[: len(KEYS)]
        pane.tmux("send-keys", "-t", "t", "q")
        pane.wait_for("Quit")
        pane.tmux("send-keys", "-t", "t", "y")
        deadline = time.monotonic() + 30
        while pane.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pane.alive(), "salal-tui did not exit after q, y"
    finally:
        pane.close()
    RunStore(out, create=False).close()  # the lock was let go: a resume may start
    assert journal_rows(out) == rows  # quitting lost nothing and added nothing
