"""The end of a run: learning curve, final accuracy, where everything is."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static


def curve_table(curve: list[dict[str, Any]]) -> Table:
    table = Table(title="learning curve", expand=False)
    table.add_column("round", justify="right")
    table.add_column("labeled", justify="right")
    table.add_column("accuracy", justify="right")
    for p in curve:
        acc = p["test_accuracy"]
        table.add_row(
            str(int(p["round"])), f"{int(p['labeled']):,}", "-" if acc != acc else f"{acc:.4f}"
        )
    return table


class SummaryScreen(Screen[None]):
    BINDINGS = [Binding("q,enter,escape", "close", "exit")]

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        s = self.summary
        curve = s.get("curve", [])
        acc = s.get("final_test_accuracy")
        title = "Run stopped" if s.get("stopped_early") else "Run finished"
        lines = [f"[b]{title}[/b]\n"]
        if acc is not None:
            lines.append(f"final accuracy [b]{acc:.4f}[/b] ({s.get('accuracy_measured_on')})")
        if "labeled" in s:
            lines.append(
                f"labeled {s['labeled']:,} of {s['train_size']:,} "
                f"(target {s['target']:,}) with {s['acquisition']}"
            )
        agreement = s.get("human_agreement_with_ground_truth")
        if agreement is not None:
            lines.append(
                f"your {s['human_labels']:,} labels agree with the ground truth on "
                f"[b]{agreement:.1%}[/b]"
            )
        lines.append(f"run directory [b]{s.get('run_dir')}[/b]")
        with Vertical(id="summary-box"):
            yield Static("\n".join(lines), id="summary-text")
            if curve:
                yield Static("accuracy by round", classes="chart-title")
                yield Sparkline([p["test_accuracy"] for p in curve], id="summary-curve")
                yield Static(curve_table(curve), id="summary-table")
            yield Static(f"[dim]export: salal-core export {s.get('run_dir')} --format csv[/dim]")
        yield Footer()

    def action_close(self) -> None:
        self.app.exit(self.summary)
