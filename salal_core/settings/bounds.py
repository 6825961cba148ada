"""What a number flag accepts: a whole number however it is written, within bounds the flag
table declares, and one line naming them for anything else."""

from __future__ import annotations

from dataclasses import dataclass

from salal_core.errors import SalalError


def whole_number(text: str) -> int:
    """An integer, also written as 1e5 (argparse's int refuses that with a usage screen, and
    a huge one then meets its flag's bounds in one line)."""
    try:
        return int(text)
    except ValueError:
        number = float(text)  # not a number at all: argparse says so
        if not number.is_integer():  # 1.5, inf, nan
            raise ValueError(text) from None
        return int(number)


def _shown(value: float, separated: bool = True) -> str:
    if isinstance(value, int):
        return f"{value:,}" if separated else str(value)
    return f"{value:g}"


@dataclass(frozen=True)
class Bounds:
    """The values a number flag takes, both ends included, and why it stops there."""

    low: float
    high: float
    why: str

    def check(self, name: str, value: float) -> None:
        """One line for a value outside the bounds (NaN among them)."""
        if not self.low <= value <= self.high:
            raise SalalError(
                f"{name} must be from {_shown(self.low)} to {_shown(self.high)} ({self.why}), "
                f"not {_shown(value, separated=False)}"
            )
