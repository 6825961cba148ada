"""What a run reports at its end: one typed record for the CLI, the app, `compare` and the
engine process, written to RUN_DIR/summary.json."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from salal_core.config import RunConfig
from salal_core.config_io import from_dict, to_dict
from salal_core.data.skipped import SkippedFile, skipped_file
from salal_core.json_text import number
from salal_core.run import agreement
from salal_core.run.agreement import Agreement

OracleKind = Literal["auto", "human"]
AccuracySource = Literal["test", "held-out"]
StopReason = Literal["budget", "pool empty", "flat", "stable", "collapsed", "stopped"]


@dataclass(frozen=True)
class CurvePoint:
    """One round of the learning curve."""

    round: int
    labeled: int
    fraction: float
    test_accuracy: float  # NaN when there was nothing to measure it on
    seconds: float
    # Cohen's kappa between this round's and the last round's predictions on the stop set
    # (stability.py); NaN in the first round, and in curves saved before it was measured.
    kappa: float = math.nan
    # What the round's head read: a backbone's embedding, rotnet or pixels ("" before it was
    # recorded).
    head_input: str = ""


@dataclass(frozen=True)
class RunSummary:
    run_dir: str
    preset: str
    acquisition: str
    seed: int
    oracle: OracleKind
    train_size: int
    labeled: int
    target: int
    accuracy_source: AccuracySource
    holdout_every: int  # with "held-out": one labeled item in this many measures accuracy
    curve: tuple[CurvePoint, ...]
    human_labels: int
    human_agreement: float | None  # share of human labels equal to a known ground truth
    stop_reason: StopReason
    stop_detail: str  # the reason in a sentence, for the summary screen and the log
    seconds: float
    config: RunConfig = field(repr=False)
    # The model's guesses a person accepted in the grid: counted apart from typed labels.
    accepted_labels: int = 0
    accepted_agreement: float | None = None  # share of them equal to a known ground truth
    # How far the people who labeled agree (run/agreement.py): counts, kappas, disputes.
    agreement: Agreement = field(default_factory=agreement.nobody)
    # The source's files that were not read, each with why (unreadable, a dangling link, ...).
    skipped_files: tuple[SkippedFile, ...] = ()

    @property
    def final_accuracy(self) -> float | None:
        if not self.curve or math.isnan(self.curve[-1].test_accuracy):
            return None
        return self.curve[-1].test_accuracy

    @property
    def features(self) -> str:
        """Where the model's features came from, in words: the backbone, and what the last
        round's head read where that was another input."""
        backbone = self.config.model.backbone
        read = self.curve[-1].head_input if self.curve else ""
        return backbone if read in ("", backbone) else f"{backbone} (the head reads {read})"

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason == "stopped"

    @property
    def accuracy_label(self) -> str:
        """How the accuracy was measured, in words for people."""
        if self.accuracy_source == "test":
            return "test accuracy"
        return f"held-out accuracy (1 in {self.holdout_every} labels)"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"] = to_dict(self.config)
        out["final_accuracy"] = self.final_accuracy
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        """Read back what `to_json` wrote (RUN_DIR/summary.json); a null figure is NaN."""
        fields = {k: v for k, v in data.items() if k != "final_accuracy"}
        fields["curve"] = tuple(
            CurvePoint(
                **{
                    **p,
                    "test_accuracy": number(p["test_accuracy"]),
                    "kappa": number(p.get("kappa")),
                }
            )
            for p in data["curve"]
        )
        fields["config"] = from_dict(data["config"])
        if "agreement" in data:  # (summaries written before it was measured have none)
            fields["agreement"] = agreement.from_json(data["agreement"])
        fields["skipped_files"] = tuple(
            skipped_file(s["path"], s["reason"]) for s in data.get("skipped_files", ())
        )
        return cls(**fields)


def stop_sentence(reason: StopReason, flat_rounds: int) -> str:
    """Why a run ended, in words for the summary screen and the log."""
    return {
        "budget": "the label budget is spent",
        "pool empty": "every image is labeled or was skipped",
        "flat": f"accuracy has not risen for {flat_rounds} rounds (--stop-when-flat)",
        "stable": "the predictions stopped changing: kappa between rounds averaged 0.99 or more "
        "over the last 3 (--stop-when-stable)",
        "collapsed": "training collapsed",
        "stopped": "stopped before the end; every label so far is saved (--resume)",
    }[reason]
