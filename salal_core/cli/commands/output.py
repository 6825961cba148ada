"""What a command hands the user as a file: rows as CSV or JSON, written whole, or a one-line
error that says why it could not be."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from salal_core import json_text
from salal_core.errors import SalalError


def render(rows: list[dict[str, Any]], fmt: str, fields: Sequence[str]) -> str:
    """`rows` as a CSV table with `fields` as its columns, or as a JSON list."""
    if fmt == "json":
        return json_text.dumps(rows, indent=1) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_text(path: Path, text: str) -> None:
    """Write the file, or say in one line why not (a missing folder, no permission)."""
    try:
        path.write_text(text)
    except OSError as exc:
        reason = exc.strerror or exc
        raise SalalError(f"cannot write {path} ({reason}); pass another path") from None
