"""What the model thinks of the item on screen: its index, top-3 guesses and score."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from salal_core.events import Query


class QueryInfo(Static):
    def show(
        self,
        query: Query | None,
        class_names: list[str],
        acquisition: str,
        answer: int | None = None,
    ) -> None:
        if query is None:
            self.update(Text("nothing to label right now", style="dim"))
            return
        text = Text()
        text.append(f"image #{query.index}", style="bold")
        text.append(f"   {acquisition} score {query.score:.3f}\n", style="dim")
        text.append("model guesses  ")
        ranked = sorted(range(len(query.probabilities)), key=lambda c: -query.probabilities[c])
        for c in ranked[:3]:
            name = class_names[c] if c < len(class_names) else str(c)
            text.append(f"{name} ", style="bold cyan" if c == ranked[0] else "cyan")
            text.append(f"{query.probabilities[c]:.0%}   ")
        if answer is not None:
            right = answer == ranked[0]
            text.append("\nground truth   ")
            text.append(class_names[answer], style="bold green" if right else "bold yellow")
            text.append("  (model right)" if right else "  (model wrong)", style="dim")
        self.update(text)
