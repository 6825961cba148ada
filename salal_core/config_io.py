"""A run's settings as plain data and as TOML: how a run directory stores its `config.toml`,
and how a run, a resume or a child process reads it back."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from salal_core.config import RunConfig
from salal_core.errors import SalalError


def to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(data: dict[str, Any], cls: type = RunConfig) -> Any:
    """Rebuild a nested config dataclass from `to_dict` output, ignoring unknown keys."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if is_dataclass(default):
            value = from_dict(value, type(default))
        kwargs[f.name] = value
    return cls(**kwargs)


def dumps_toml(data: dict[str, Any]) -> str:
    """Write a nested dict of scalars as TOML (the standard library reads TOML but cannot write it,
    and the engine must run with nothing beyond torch, numpy and rich)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def table(prefix: str, d: dict[str, Any]) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict) and v is not None}
        if prefix and plain:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{k} = {scalar(v)}" for k, v in plain.items())
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines).lstrip() + "\n"


def load_toml(path: Path) -> RunConfig:
    try:
        config: RunConfig = from_dict(tomllib.loads(path.read_text()))
        return config
    except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
        raise SalalError(f"cannot read {path}: {exc}; is this a salal run directory?") from None
