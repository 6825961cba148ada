"""A titled sparkline that grows by one point per epoch."""

from __future__ import annotations

import math
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class MetricChart(Vertical):
    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.values: list[float] = []

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="chart-title")
        yield Sparkline([], summary_function=max)

    def reset(self, title: str) -> None:
        self.title, self.values = title, []
        self._refresh()

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self.values.append(value)
        self._refresh()

    def _refresh(self) -> None:
        last = f" {self.values[-1]:.3f}" if self.values else ""
        self.query_one(Label).update(f"{self.title}{last}")
        self.query_one(Sparkline).data = list(self.values)
