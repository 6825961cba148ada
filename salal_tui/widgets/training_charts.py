"""Loss and accuracy side by side, one point per epoch: rotation pretraining first, then the
fine-tuning rounds (whose accuracy is measured on the test split or on held-out labels)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from salal_core.events import EpochEnded, PhaseStarted

from .metric_chart import MetricChart


class TrainingCharts(Horizontal):
    def compose(self) -> ComposeResult:
        yield MetricChart("loss", id="loss", classes="chart")
        yield MetricChart("accuracy", id="accuracy", classes="chart")

    def start(self, event: PhaseStarted, held_out: bool) -> None:
        """Fresh charts when pretraining starts and when fine-tuning first does; the rounds
        after that carry on one curve."""
        loss, accuracy = (
            self.query_one("#loss", MetricChart),
            self.query_one("#accuracy", MetricChart),
        )
        if event.phase == "pretrain":
            loss.reset("rotation loss")
            accuracy.reset("rotation accuracy")
        elif not loss.title.startswith("training"):
            loss.reset("training loss")
            accuracy.reset("held-out accuracy" if held_out else "test accuracy")

    def add(self, event: EpochEnded) -> None:
        self.query_one("#loss", MetricChart).add(event.loss)
        self.query_one("#accuracy", MetricChart).add(event.test_accuracy)
