"""More than one process, on the CPU: torchrun with two gloo ranks, the tiny preset.

One launched run carries most assertions, to keep CI short: rank 1 is killed in the middle of
it and torchrun starts the group again, and still the run ends with every label, each asked
once, and only rank 0 ever wrote into the run directory (an audit hook in every rank logs each
write it makes). Scoring is compared, image by image, between two ranks and one process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, TRAINING_WAIT, tiny_cli, wait_for
from salal_core.distributed import check_local_ranks
from salal_core.errors import SalalError

RANKS = 2
RUN_FLAGS = ("--pretrain-epochs", "2", "--epochs-per-round", "3", "--query-size", "8")

# Installed in every rank (PYTHONPATH): logs each write a rank makes under the watched folder.
AUDIT = """
import os, sys
_watch, _logs = os.environ.get("SALAL_AUDIT_WATCH"), os.environ.get("SALAL_AUDIT_LOGS")
if "RANK" in os.environ and _watch and _logs:
    _name = f"rank{os.environ['RANK']}-attempt{os.environ.get('TORCHELASTIC_RESTART_COUNT', 0)}"
    _log = os.path.join(_logs, _name + ".log")
    _watch = os.path.realpath(_watch)
    _busy = []
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _under(path):
        try:
            return os.path.realpath(os.fsdecode(path)).startswith(_watch)
        except (TypeError, ValueError):
            return False  # a file descriptor: opened by path before, and logged then

    def _hook(event, args):
        if _busy:
            return
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE
            )
        elif event in ("os.rename", "os.remove", "os.mkdir", "sqlite3.connect"):
            path, writes = args[0], True
        else:
            return
        if writes and _under(path):
            _busy.append(1)
            try:
                with open(_log, "a") as f:
                    f.write(f"{event} {os.fsdecode(path)}\\n")
            finally:
                _busy.clear()

    sys.addaudithook(_hook)
"""


@dataclass(frozen=True)
class Launched:
    run_dir: Path
    returncode: int
    killed_mid_run: bool
    audit: Path
    logs: Path
    cache: Path


def torchrun(*launch: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(RANKS), *launch]


def group_env(audit: Path, watch: Path) -> dict[str, str]:
    sitecustomize = audit / "site"
    sitecustomize.mkdir(parents=True, exist_ok=True)
    (sitecustomize / "sitecustomize.py").write_text(AUDIT)
    path = os.pathsep.join([str(sitecustomize), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {
        **os.environ,
        "PYTHONPATH": path,
        "SALAL_AUDIT_WATCH": str(watch),
        "SALAL_AUDIT_LOGS": str(audit),
        "OMP_NUM_THREADS": "1",
    }


def rank_pid(launcher: int, rank: int) -> int | None:
    """The process torchrun started for `rank` (found by its environment)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.fixture(scope="module")
def launched(synthetic_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Launched:
    """`torchrun --standalone --nproc-per-node 2 -m salal_core.cli run --preset tiny ...`, with
    --max-restarts 1; rank 1 is killed once round 0's checkpoint is on disk."""
    base = tmp_path_factory.mktemp("group")
    run_dir, audit, logs = base / "R", base / "audit", base / "logs"
    args = tiny_cli("run", synthetic_pack, run_dir, base / "cache", *RUN_FLAGS)
    launch = ("--standalone", "--max-restarts", "1", "--log-dir", str(logs), "--redirects", "3")
    process = subprocess.Popen(
        [*torchrun(*launch), "-m", "salal_core.cli", *args],
        env=group_env(audit, run_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    killed = False
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if not killed and (run_dir / "checkpoints" / "round-0000.pt").exists():
            pid = rank_pid(process.pid, 1)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = process.poll() is None
        time.sleep(0.02)
    try:
        output = process.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    if process.returncode != 0:
        print(output.decode(errors="replace")[-4000:])
    return Launched(run_dir, process.returncode, killed, audit, logs, base / "cache")


def test_a_two_rank_run_killed_mid_round_finishes_with_every_label(launched: Launched) -> None:
    assert launched.killed_mid_run
    assert launched.returncode == 0
    summary = json.loads((launched.run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "budget"
    assert len(summary["curve"]) >= 3 and summary["labeled"] == summary["target"]
    export = subprocess.run(
        [sys.executable, "-m", "salal_core.cli", "export", str(launched.run_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = export.stdout.strip().splitlines()[1:]
    assert len(rows) == summary["labeled"]
    with sqlite3.connect(launched.run_dir / "salal.db") as db:
        labeled = [i for (i,) in db.execute("SELECT idx FROM journal WHERE kind = 'label'")]
    assert len(labeled) == len(set(labeled)) == summary["labeled"]  # nothing asked twice


def test_the_restarted_group_resumed_its_own_run(launched: Launched) -> None:
    logs = sorted(p.name for p in launched.audit.glob("*.log"))
    assert "rank0-attempt0.log" in logs and "rank0-attempt1.log" in logs
    rank0 = sorted(launched.logs.rglob("attempt_1/0/stderr.log"))
    assert rank0 and "resumed from round-" in rank0[0].read_text()


def test_only_rank_0_writes_the_run_directory(launched: Launched) -> None:
    written = {p.name: p.read_text() for p in launched.audit.glob("*.log")}
    rank0 = written["rank0-attempt0.log"] + written["rank0-attempt1.log"]
    assert "salal.db" in rank0 and "round-0000.pt" in rank0  # the hook sees rank 0's writes
    assert not [name for name in written if name.startswith("rank1")]
    # Nor does rank 1 print: progress bars and the summary line are rank 0's.
    for attempt in ("attempt_0", "attempt_1"):
        for stream in ("stdout.log", "stderr.log"):
            for log in launched.logs.rglob(f"{attempt}/1/{stream}"):
                assert log.read_text() == "", f"{log} is not empty"
    out = next(launched.logs.rglob("attempt_1/0/stdout.log")).read_text()
    assert "labeled (50%) in" in out


def test_two_ranks_score_and_select_what_one_process_does(
    launched: Launched, tmp_path: Path
) -> None:
    script = ROOT / "tests" / "rank_scoring.py"
    env = group_env(tmp_path / "audit", tmp_path / "nothing")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    run_dir = str(launched.run_dir)
    subprocess.run([sys.executable, str(script), run_dir, str(one)], env=env, check=True)
    launch = [*torchrun("--standalone"), str(script), run_dir, str(two)]
    subprocess.run(launch, env=env, check=True, capture_output=True)
    alone, group = json.loads(one.read_text()), json.loads(two.read_text())
    assert (alone["world"], group["world"]) == (1, RANKS)
    assert group["pool"] == alone["pool"]
    for part in ("probabilities", "features", "embeddings", "labeled_embeddings"):
        a, g = np.asarray(alone[part]), np.asarray(group[part])
        assert a.shape == g.shape and a.size > 0
        np.testing.assert_allclose(g, a, atol=1e-5)
    for name, chose in alone["chosen"].items():
        same = group["chosen"][name]
        if chose["items"] == same["items"]:
            continue
        # Ties within 1e-6 may break either way; nothing else may differ.
        np.testing.assert_allclose(same["scores"], chose["scores"], atol=1e-6)


def test_a_group_that_cannot_form_is_one_line(synthetic_pack: Path, tmp_path: Path) -> None:
    """Rank 0 of two, and rank 1 never comes: the timeout, then one line and status 2."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "WORLD_SIZE": "2",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    args = tiny_cli("run", synthetic_pack, tmp_path / "R", tmp_path / "c", "--group-timeout", "3")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "salal_core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("salal-core: error: the process group did not form within 3 s")
    assert time.monotonic() - started < 60
    assert not (tmp_path / "R").exists()  # nothing was started


def asked_rounds(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "salal.db") as db:
        return int(db.execute("SELECT COALESCE(MAX(round), 0) FROM queue").fetchone()[0])


def test_sync_bn_without_gpus_is_one_line(synthetic_pack: Path, tmp_path: Path, capsys) -> None:
    from salal_core.cli.main import main

    args = tiny_cli("run", synthetic_pack, tmp_path / "R", tmp_path / "c", "--sync-bn")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "salal-core: error: --sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU "
        "kernels); drop it here"
    )


def test_local_ranks_are_checked_against_the_gpus(
    synthetic_pack: Path, tmp_path: Path, capsys
) -> None:
    import torch

    from salal_tui.__main__ import main as salal_tui

    check_local_ranks(2, torch.device("cpu"))  # gloo processes on a CPU: any number
    with pytest.raises(SalalError, match="--ranks must be at least 1"):
        check_local_ranks(0, torch.device("cpu"))
    args = ["--ranks", "0", "--data", str(synthetic_pack), "--device", "cpu"]
    assert salal_tui([*args, "--out", str(tmp_path / "R")]) == 2
    assert capsys.readouterr().err == "salal-tui: error: --ranks must be at least 1\n"


async def test_salal_tui_with_two_ranks_labels_and_trains(
    synthetic_pack: Path, tmp_path: Path
) -> None:
    """`salal-tui --ranks 2`: the app's engine as two gloo ranks. The first image comes, a
    batch of answers trains a round across both ranks, the next image is scored by both."""
    from test_tui import make_session

    from helpers import SIZE, journal, random_backbone
    from salal_tui.launch import PrivateRun, label_alone

    # A backbone given, not pretrained: two seeded batches come first (a person labeling
    # through pretraining would be asked seeded samples until it ends), then the engine's own.
    backbone = str(random_backbone(tmp_path / "pretrain.pt", 4))
    overrides = {"active.budget": 0.6, "model.pretrained": backbone}
    session = make_session(synthetic_pack, tmp_path / "c", tmp_path / "run", False, **overrides)
    app = label_alone(session, "tester", ranks=2)
    assert isinstance(app.runner, PrivateRun)
    runner = app.runner.hosted.engine
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        await wait_for(pilot, lambda: screen.shown is not None, TRAINING_WAIT)
        assert len(runner.followers) == 1 and runner.followers[0].is_alive()

        # The person labels what is shown until the engine's own questions come: seeded
        # samples first (as many batches as pretraining took to finish), then a round trained
        # and measured on both ranks, and the pool scored by both for the next.
        def scored() -> bool:
            return asked_rounds(tmp_path / "run") > 0

        while not scored():
            await wait_for(pilot, lambda: screen.shown is not None or scored(), TRAINING_WAIT)
            if not scored():
                await pilot.press("1")
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None, timeout=60)
    assert len(journal(tmp_path / "run")) >= 8
    assert not runner.followers[0].is_alive()
