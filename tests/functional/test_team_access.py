"""Who may use a run: its owner; with `serve --socket-group`, the run directory's group; and
nobody else, who is told in one line whose the run is.

A client runs as a real other user here: a forked child of the test that takes the user's
ids (made with groupadd and useradd where they are missing), so these tests need root and are
skipped elsewhere, saying why. What the child runs is imported before it forks: the other
user may not read this interpreter's files."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from team_driver import service_of

# What the child runs is read beforehand: the commands import these as they go.
import salal_core.cli.commands.serve
import salal_core.run.factory
import salal_core.team.hosted  # noqa: F401
import salal_tui.app
import salal_tui.desk  # noqa: F401
from salal_core.cli.main import main as core_main
from salal_core.config import RunConfig
from salal_core.run.oracle import Answer
from salal_core.run.store import RunStore
from salal_core.team.client import ServiceClient
from salal_tui.__main__ import main as tui_main

TEAM, MATE, STRANGER = "salal-team", "salal-mate", "salal-stranger"
NOT_SHARED = "this run belongs to {}; ask them for --socket-group\n"
IN_GROUP = "this run belongs to {0} and shared with the group {1}; ask them to add you to {1}\n"
CHILD_TIMEOUT = 60.0  # seconds a client as another user may take


@dataclass(frozen=True)
class Users:
    team: int  # the group's id
    mate: pwd.struct_passwd  # a member of the group (not as their primary group)
    stranger: pwd.struct_passwd  # not in it


def _make(command: list[str], exists: Callable[[], object]) -> None:
    """Run groupadd/useradd unless the group or user is there already (another test run, at
    the same moment too: exit status 9 says it is taken)."""
    try:
        exists()
        return
    except KeyError:
        pass
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 9):
        pytest.skip(f"{' '.join(command)} failed: {done.stderr.strip()}")


@pytest.fixture(scope="module")
def users() -> Users:
    if os.geteuid() != 0:
        pytest.skip("needs root, to make a second user and run a client as them")
    if not (shutil.which("groupadd") and shutil.which("useradd")):
        pytest.skip("needs groupadd and useradd, to make a second user")
    _make(["groupadd", "--system", TEAM], lambda: grp.getgrnam(TEAM))
    _make(
        ["useradd", "--system", "--no-create-home", "--groups", TEAM, MATE],
        lambda: pwd.getpwnam(MATE),
    )
    _make(["useradd", "--system", "--no-create-home", STRANGER], lambda: pwd.getpwnam(STRANGER))
    return Users(grp.getgrnam(TEAM).gr_gid, pwd.getpwnam(MATE), pwd.getpwnam(STRANGER))


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temporary folders are private)."""
    folder = Path(tempfile.mkdtemp(prefix="salal-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def as_user(user: pwd.struct_passwd, act: Callable[[], int]) -> tuple[int, str]:
    """`act()` in a forked child running as `user`, with their groups: its exit status and
    everything it printed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read)
            sys.stdout = sys.stderr = os.fdopen(write, "w", buffering=1)
            os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            code = act()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    timer = threading.Timer(CHILD_TIMEOUT, os.kill, (pid, signal.SIGKILL))  # never a hang
    timer.start()
    try:
        with os.fdopen(read) as out:
            printed = out.read()
        _, status = os.waitpid(pid, 0)
    finally:
        timer.cancel()
    return os.waitstatus_to_exitcode(status), printed


def join(run: Path) -> int:
    """Join as a labeler and print the run's classes."""
    client = ServiceClient(run, "mate")
    print(" ".join(client.connect().class_names))
    client.close()
    return 0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_run_directory_and_its_files_are_private_to_its_owner(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", create=True)
    store.save_config(RunConfig())
    run = store.dir
    store.close()
    for path in (run, run / "config.toml"):  # as an older salal left them
        path.chmod(0o755 if path.is_dir() else 0o644)
    store = RunStore(run, create=False)
    try:
        assert mode(run) == 0o700 and mode(run / "checkpoints") == 0o700
        for name in (".lock", "salal.db", "config.toml"):
            assert mode(run / name) == 0o600, name
    finally:
        store.close()


def test_a_run_in_a_folder_holding_other_things_leaves_them_and_the_umask_as_they_were(
    tmp_path: Path,
) -> None:
    out = tmp_path / "project"
    (out / "scripts").mkdir(parents=True)
    tool, notes = out / "tool.sh", out / "scripts" / "notes.txt"
    tool.write_text("#!/bin/sh\necho hi\n")
    notes.write_text("mine")
    tool.chmod(0o755)
    notes.chmod(0o644)
    (out / "scripts").chmod(0o755)
    before = os.umask(0o022)
    try:
        store = RunStore(out, create=True)
        store.save_classes(["cat", "dog"])
        store.record_answers([Answer(0, 0, 1, 0, "human", 0.0, "ana")])
        umask_after = os.umask(0o022)
        store.close()
        store = RunStore(out, create=False)  # and the run opens again, its answer kept
        assert {i: r.label for i, r in store.labels().items()} == {0: 1}
        store.close()
    finally:
        os.umask(before)
    assert mode(tool) == 0o755 and mode(out / "scripts") == 0o755 and mode(notes) == 0o644
    assert mode(out) == 0o700
    assert umask_after == 0o022  # the process's umask is the person's still


def test_a_stranger_is_told_whose_run_it_is_in_one_line(users: Users, shared: Path) -> None:
    store = RunStore(shared / "run", create=True)
    run = store.dir
    service = service_of(store)
    try:
        says = NOT_SHARED.format(pwd.getpwuid(os.getuid()).pw_name)
        joined = as_user(
            users.stranger, lambda: tui_main(["--join", str(run), "--images", "blocks"])
        )
        assert joined == (2, f"salal-tui: error: {says}")
        served = as_user(users.stranger, lambda: core_main(["serve", str(run)]))
        assert served == (2, f"salal-core: error: {says}")  # the hint it followed before
    finally:
        service.close()
        store.close()


def test_socket_group_lets_in_the_run_directorys_group_and_nobody_else(
    users: Users, shared: Path
) -> None:
    store = RunStore(shared / "run", create=True)
    run = store.dir
    os.chown(run, -1, users.team)  # the run directory's group (not set-group-id)
    service = service_of(store, group=users.team)
    try:
        assert as_user(users.mate, lambda: join(run)) == (0, "cat dog\n")
        socket_file = run / "salal.sock"
        assert socket_file.stat().st_gid == users.team and mode(socket_file) == 0o770
        assert mode(run) == 0o750 and mode(run / "salal.db") == 0o640
        says = IN_GROUP.format(pwd.getpwuid(os.getuid()).pw_name, TEAM)
        joined = as_user(
            users.stranger, lambda: tui_main(["--join", str(run), "--images", "blocks"])
        )
        assert joined == (2, f"salal-tui: error: {says}")
    finally:
        service.close()
        store.close()


def test_another_users_file_in_the_folder_is_not_a_reason_to_refuse_a_new_run(
    users: Users, shared: Path
) -> None:
    theirs = shared / "theirs"
    theirs.mkdir()
    (theirs / "data.txt").write_text("the stranger's")
    for path, wanted in ((theirs, 0o755), (theirs / "data.txt", 0o644)):
        os.chown(path, users.stranger.pw_uid, users.stranger.pw_gid)
        path.chmod(wanted)
    os.chown(shared, users.mate.pw_uid, users.mate.pw_gid)  # the mate's folder, shared

    def new_run() -> int:
        RunStore(shared, create=True).close()
        print("made")
        return 0

    assert as_user(users.mate, new_run) == (0, "made\n")
    assert mode(theirs) == 0o755 and mode(theirs / "data.txt") == 0o644
