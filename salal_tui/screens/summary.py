"""The end of a run: the learning curve as a chart and a table, final accuracy, where
everything is."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..desk import Agreement, CurvePoint, RunSummary, reference_for, skipped_sentence
from ..widgets import CurveChart


def curve_table(curve: tuple[CurvePoint, ...]) -> Table:
    table = Table(title="learning curve", expand=False)
    table.add_column("round", justify="right")
    table.add_column("labeled", justify="right")
    table.add_column("accuracy", justify="right")
    for p in curve:
        acc = p.test_accuracy
        table.add_row(str(p.round), f"{p.labeled:,}", "-" if math.isnan(acc) else f"{acc:.4f}")
    return table


def agreement_table(agreement: Agreement) -> Table:
    """Who labeled how many, and how far each pair agrees on the images both answered."""

    def figure(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:.3f}"

    counts = " · ".join(f"{c.labeler} {c.answers:,}" for c in agreement.labelers)
    table = Table(
        title=f"labelers: {counts}\nobserved agreement {figure(agreement.observed)}, Fleiss' "
        f"kappa {figure(agreement.fleiss)}, over {agreement.overlapping:,} images answered "
        "more than once",
        expand=False,
    )
    for name in ("labeler", "with", "shared"):
        table.add_column(name, justify="right" if name == "shared" else "left")
    table.add_column("agree", justify="right")
    table.add_column("kappa", justify="right")
    for pair in agreement.pairs:
        table.add_row(
            pair.first, pair.second, f"{pair.images:,}", figure(pair.observed), figure(pair.kappa)
        )
    return table


class SummaryScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q,enter,escape", "close", "exit")]

    def __init__(self, summary: RunSummary) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        s = self.summary
        acc = s.final_accuracy
        lines = [f"[b]{'Run stopped' if s.stopped_early else 'Run finished'}[/b]\n"]
        if acc is not None:
            lines.append(f"final accuracy [b]{acc:.4f}[/b] ({s.accuracy_label})")
        if s.train_size:
            lines.append(
                f"labeled {s.labeled:,} of {s.train_size:,} (target {s.target:,}) "
                f"with {s.acquisition}, features from {s.features}"
            )
        if s.human_agreement is not None:
            lines.append(
                f"your {s.human_labels:,} labels agree with the ground truth on "
                f"[b]{s.human_agreement:.1%}[/b]"
            )
        if s.accepted_labels:
            agree = (
                ""
                if s.accepted_agreement is None
                else f", which agree with the ground truth on [b]{s.accepted_agreement:.1%}[/b]"
            )
            lines.append(f"{s.accepted_labels:,} of the model's guesses accepted{agree}")
        lines.append(f"why it ended: {s.stop_detail}")
        if s.skipped_files:
            named = skipped_sentence(s.skipped_files, "the source")
            lines.append(f"{escape(named)}; all named in summary.json")
        lines.append(f"run directory [b]{s.run_dir}[/b]")
        with Vertical(id="summary-box"):
            yield Static("\n".join(lines), id="summary-text")
            if len(s.agreement.labelers) > 1:  # a team: who labeled what, and how alike
                yield Static(agreement_table(s.agreement), id="summary-agreement")
            if s.curve:
                with Horizontal(id="summary-curves"):
                    yield CurveChart(s.curve, s.acquisition, reference_for(s), id="summary-curve")
                    with VerticalScroll(id="summary-table"):
                        yield Static(curve_table(s.curve))
            yield Static(f"[dim]export: salal-core export {s.run_dir} --format csv[/dim]")
        yield Footer()

    def action_close(self) -> None:
        self.app.exit(self.summary)
