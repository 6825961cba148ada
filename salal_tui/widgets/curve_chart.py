"""The learning curve at the end of a run: test accuracy against labels, drawn by plotext,
with the reference curve of the same experiment beside it where there is one."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

from salal_core.run.reference import ReferenceCurve
from salal_core.run.summary import CurvePoint


class CurveChart(PlotextPlot):
    def __init__(
        self,
        curve: tuple[CurvePoint, ...],
        acquisition: str,
        reference: ReferenceCurve | None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.curve, self.acquisition, self.reference = curve, acquisition, reference

    def on_mount(self) -> None:
        plt = self.plt
        # Rounds with nothing to measure on (no held-out label yet) have NaN accuracy.
        measured = [p for p in self.curve if math.isfinite(p.test_accuracy)]
        plt.plot(
            [p.labeled for p in measured],
            [p.test_accuracy for p in measured],
            label=f"this run ({self.acquisition})",
            marker="braille",
        )
        if self.reference is not None:
            ref = self.reference
            plt.plot(list(ref.labels), list(ref.accuracy), label=ref.name, marker="dot")
        plt.xlabel("labels")
        plt.ylabel("accuracy")
