"""Who a labeler is: a short name, the login name unless `--name` says otherwise."""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import re
from pathlib import Path

from salal_core.errors import SalalError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,31}")


def login_name() -> str:
    """This process's login name (the journal's labeler when no name is given)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def owner_name(path: Path) -> str:
    """The login name of a file's owner: who labeled a run written before labelers were
    recorded (its person was whoever owned the run)."""
    return user_name(path.stat().st_uid)


def user_name(uid: int) -> str:
    """A user's login name, or uidN where the system has no name for them."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def group_name(gid: int) -> str:
    """A group's name, or its number where the system has no name for it."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def checked_name(name: str) -> str:
    """A labeler's name as given to --name, or a one-line error saying what is allowed."""
    if not NAME.fullmatch(name):
        raise SalalError(
            f"--name {name!r} is not a labeler name; use up to 32 letters, digits, '.', '_', "
            "'@' or '-', starting with a letter or digit"
        )
    return name
