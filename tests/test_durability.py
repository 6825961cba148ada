"""Kill a labeling session with SIGKILL at random moments, resume it, repeat: every
acknowledged label must be on disk exactly once at the end."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from salal_core.commands.export import export_rows
from salal_core.store import RunStore

DRIVER = Path(__file__).parent / "label_driver.py"


def start(pack: Path, cache: Path, run: Path, resume: bool) -> subprocess.Popen:
    args = [sys.executable, str(DRIVER), str(pack), str(cache), str(run)]
    return subprocess.Popen(
        args + (["--resume"] if resume else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_acks(proc: subprocess.Popen, acks: dict[int, int], stop_after: int | None) -> bool:
    """Collect ACK lines; SIGKILL the process after `stop_after` of them. True when it ran to
    the end by itself."""
    seen = 0
    for line in proc.stdout:
        if line.startswith("ACK"):
            _, index, label = line.split()
            acks[int(index)] = int(label)
            seen += 1
            if stop_after is not None and seen >= stop_after:
                time.sleep(random.uniform(0, 0.05))  # land anywhere: mid-write, mid-train
                proc.kill()
                proc.wait()
                return False
        elif line.startswith("DONE"):
            proc.wait()
            return True
    proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    return True


def kill_and_resume(pack: Path, tmp_path: Path, kills: int, seed: int) -> None:
    random.seed(seed)
    run, cache = tmp_path / "run", tmp_path / "cache"
    acks: dict[int, int] = {}
    finished = read_acks(start(pack, cache, run, resume=False), acks, random.randint(1, 8))
    for _ in range(kills - 1):
        if finished:
            break
        finished = read_acks(start(pack, cache, run, resume=True), acks, random.randint(1, 8))
    while not finished:
        finished = read_acks(start(pack, cache, run, resume=True), acks, None)

    rows = export_rows(run)
    human = {r["index"]: r["label"] for r in rows if r["oracle"] == "human"}
    assert len({r["index"] for r in rows}) == len(rows), "an item is labeled twice"
    for index, label in acks.items():
        assert human.get(index) == label, f"acknowledged label of {index} lost"
    store = RunStore(run, create=False)
    try:
        assert len(store.labels()) == 80  # the whole budget, each item once
    finally:
        store.close()


def test_kill_and_resume(synthetic_pack: Path, tmp_path: Path) -> None:
    kill_and_resume(synthetic_pack, tmp_path, kills=3, seed=0)


@pytest.mark.slow
def test_kill_and_resume_twenty_times(synthetic_pack: Path, tmp_path: Path) -> None:
    kill_and_resume(synthetic_pack, tmp_path, kills=20, seed=1)
