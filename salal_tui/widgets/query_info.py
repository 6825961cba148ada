"""What the model thinks of the item on screen: its index, top-3 guesses and score (where the
score means something to a person); or, for a cold start, that there is no model yet."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from salal_core.events import Query
from salal_core.selection import acquire

GAP = "   "  # between two guesses on a line


def guess_lines(guesses: list[str], width: int) -> list[list[str]]:
    """Guesses packed into lines of at most `width` cells, breaking only between guesses (Rich
    would break inside "airplane 13%": to its wrapping, even a non-breaking space is a space)."""
    lines: list[list[str]] = [[]]
    used = 0
    for guess in guesses:
        extra = len(guess) + (len(GAP) if lines[-1] else 0)
        if lines[-1] and used + extra > width:
            lines.append([])
            used, extra = 0, len(guess)
        lines[-1].append(guess)
        used += extra
    return lines


def score_text(acquisition: str, score: float) -> str:
    """The score beside an image where it is an uncertainty a person can read; for a batch
    selector or a random draw, only which strategy picked it."""
    strategy = acquire.ACQUISITIONS.get(acquisition)
    if strategy is None or not strategy.readable_score:
        return f"picked by {acquisition}"
    return f"{acquisition} score {score:.3f}"


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
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"image #{query.index}", style="bold")
        if query.cold_start:
            if query.score == 0:
                how = "a seeded sample, asked while the backbone pretrains"
            elif acquisition == "random":
                how = "a seeded random sample, before any model exists"
            else:
                how = "picked from the pretrained features, before any model exists"
            text.append("\n")
            text.append(f"cold start: {how}", style="italic")
        else:
            text.append(f"   {score_text(acquisition, query.score)}\n", style="dim")
            text.append("model guesses\n")
            order = sorted(range(len(query.probabilities)), key=lambda c: -query.probabilities[c])
            guesses = [
                f"{class_names[c] if c < len(class_names) else c} {query.probabilities[c]:.0%}"
                for c in order[:3]
            ]
            lines = guess_lines(guesses, self.content_size.width or 40)
            for n, line in enumerate(lines):
                for i, guess in enumerate(line):
                    text.append(GAP if i else "")
                    text.append(guess, style="bold cyan" if (n, i) == (0, 0) else "cyan")
                if n < len(lines) - 1:
                    text.append("\n")
        if answer is not None:
            right = not query.cold_start and answer == query.predicted
            text.append("\nground truth   ")
            text.append(class_names[answer], style="bold green" if right else "bold yellow")
            if not query.cold_start:
                text.append("  (model right)" if right else "  (model wrong)", style="dim")
        self.update(text)
