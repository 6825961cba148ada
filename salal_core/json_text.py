"""JSON as every reader takes it. A figure that is not a number (NaN: nothing to measure it
on; an infinity) is written as null, never as the bare NaN Python's json writes, which is not
JSON and which strict readers (jq, JavaScript, Go) refuse. Every JSON salal writes for people
and programs (summary.json, the --json outputs, export) comes from `dumps`; `number` reads
such a null back as NaN."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every float inside it (dicts, lists, tuples) that is not finite as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON text of `value`; allow_nan=False makes sure nothing slipped through."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)


def number(value: float | None) -> float:
    """A figure read back from JSON: null is NaN again."""
    return math.nan if value is None else float(value)
