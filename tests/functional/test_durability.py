"""Kill a labeling session with SIGKILL at random moments, resume it, repeat: every
acknowledged label must be on disk exactly once at the end. Also: a full disk and an
exhausted GPU while saving and training, each one line and nothing lost."""

from __future__ import annotations

import errno
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import ROUNDS, labels_by_item, tiny_cli
from salal_core.cli.commands.export import export_rows
from salal_core.cli.main import main
from salal_core.learn import pretrain
from salal_core.run.store import RunStore

DRIVER = Path(__file__).parents[1] / "label_driver.py"


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


def test_a_full_disk_while_saving_is_one_line_and_loses_nothing(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past 120 kB (EFBIG), as a full disk would
    (ENOSPC): the first round's checkpoint, or the database's log, cannot be written."""
    out = tmp_path / "run"

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, 120_000))

    command = tiny_cli("run", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.4")
    result = subprocess.run(
        [sys.executable, "-m", "salal_core.cli", *command],
        preexec_fn=small_disk,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("salal-core: error: could not save") and "--resume" in last
    before = labels_by_item(out)
    assert main(["run", "--resume", str(out)]) == 0  # room again: it carries on and finishes
    after = labels_by_item(out)
    assert before.items() <= after.items() and len(after) > len(before)


def test_a_disk_full_when_the_run_is_created_is_one_line_and_leaves_the_out_free(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    """Past 5 kB the kernel refuses writes (EFBIG, as ENOSPC would): the database's first
    pages cannot be written. What was made of it goes, so the same --out works with room."""
    out = tmp_path / "run"
    command = tiny_cli("run", synthetic_pack, out, tmp_path / "c", *ROUNDS, "--budget", "0.3")
    result = subprocess.run(
        [sys.executable, "-m", "salal_core.cli", *command],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (5_000, 5_000)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        f"salal-core: error: could not create a run in {out} (disk I/O error); free some disk "
        "space, or pick another --out"
    ]
    assert not [p.name for p in out.iterdir() if p.name.startswith("salal.db")]
    assert main(command) == 0


def test_an_out_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only filesystem (EROFS; root is not refused by a folder's permissions, so the
    kernel's answer is given to the run's first file, its lock)."""
    opened = Path.open

    def read_only(path: Path, *args, **kwargs):
        if path.name == ".lock":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)
    out = tmp_path / "run"
    out.mkdir()
    assert main(["run", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"salal-core: error: cannot write in {out} (Read-only file system); a run needs a "
        "folder it can write to: free some disk space or make it writable, or pick another --out"
    ]


def test_running_out_of_gpu_memory_is_one_line(
    synthetic_pack: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """No GPU here: the training step raises the error CUDA raises when memory runs out."""

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pretrain, "pretrain", out_of_memory)
    code = main(tiny_cli("run", synthetic_pack, tmp_path / "run", tmp_path / "c", *ROUNDS))
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        code == 2
        and "ran out of memory" in err[-1]
        and "--batch-size" in err[-1]
        and "--eval-batch-size" in err[-1]
    )
