"""What `salal-core bench` measures, typed: each phase's figures, the whole report, the JSON
layout that scripts read, and the tables that people read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from salal_core.config import SpeedConfig


@dataclass(frozen=True)
class Decode:
    """Loading the source into an empty cache (decoding every image), then from the cache."""

    cold_seconds: float
    warm_seconds: float


@dataclass(frozen=True)
class Throughput:
    """The engine's own training step: network inputs a second, after its warm-up."""

    images_per_second: float
    batch_size: int
    warmup_seconds: float  # autotuning, and compiling when asked
    host_syncs_per_epoch: int | None  # counted on CUDA only


@dataclass(frozen=True)
class TutorialThroughput:
    """The same network trained as the usual PyTorch tutorial writes it."""

    images_per_second: float
    workers: int


@dataclass(frozen=True)
class Scoring:
    """One round's scoring: the pool pass, then the strategy's selection (the best of 3)."""

    seconds: float
    pool_pass_seconds: float
    select_seconds: float
    pool: int
    labeled: int  # the labeled images the strategy also passes over (0 if it needs none)
    acquisition: str
    warmup_seconds: float
    host_syncs: int | None  # counted on CUDA only


@dataclass(frozen=True)
class EngineFigures:
    """The engine's phases, timed as a run runs them."""

    pretrain: Throughput
    finetune: Throughput
    score_pool: Scoring


@dataclass(frozen=True)
class Variant:
    """The engine's figures again with one speed switch changed."""

    speed: SpeedConfig
    figures: EngineFigures


@dataclass(frozen=True)
class Skipped:
    """A variant not timed here, and why."""

    reason: str


@dataclass(frozen=True)
class EndToEnd:
    """The preset's whole run, the ground truth answering."""

    seconds: float
    final_test_accuracy: float | None  # None when the run ended before a round was tested
    rounds: int


@dataclass(frozen=True)
class BenchReport:
    """Everything one `salal-core bench` measured, and on what."""

    preset: str
    device: str
    host: str
    cpu_threads: int
    torch: str
    date: str
    data: str | None
    speed: SpeedConfig
    decode: Decode
    train_images: int
    engine: EngineFigures
    naive_finetune: TutorialThroughput
    end_to_end: EndToEnd | None  # None under --no-end-to-end
    ablation: dict[str, Variant | Skipped] = field(default_factory=dict)  # --ablate's variants

    @property
    def finetune_speedup_over_naive(self) -> float:
        return self.engine.finetune.images_per_second / self.naive_finetune.images_per_second

    def to_json(self) -> dict[str, Any]:
        """The report as `bench` prints it: the engine's phases at the top level."""
        out: dict[str, Any] = {
            "preset": self.preset,
            "device": self.device,
            "host": self.host,
            "cpu_threads": self.cpu_threads,
            "torch": self.torch,
            "date": self.date,
            "data": self.data,
            "speed": asdict(self.speed),
            "decode": asdict(self.decode),
            "train_images": self.train_images,
            **asdict(self.engine),
            "naive_finetune": asdict(self.naive_finetune),
            "finetune_speedup_over_naive": self.finetune_speedup_over_naive,
        }
        if self.ablation:
            out["ablation"] = {
                name: {"skipped": variant.reason}
                if isinstance(variant, Skipped)
                else {"speed": asdict(variant.speed), **asdict(variant.figures)}
                for name, variant in self.ablation.items()
            }
        if self.end_to_end is not None:
            out["end_to_end"] = asdict(self.end_to_end)
        return out


def summary_tables(report: BenchReport) -> list[Table]:
    """The figures people read: one table of the run's, one row per ablated variant."""
    figures = Table(title=f"salal bench: {report.device}, preset {report.preset}")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    decode, engine = report.decode, report.engine
    figures.add_row(
        "decode, cold / warm", f"{decode.cold_seconds:.1f} s / {decode.warm_seconds:.2f} s"
    )
    figures.add_row("rotation pretraining", f"{engine.pretrain.images_per_second:,.0f} img/s")
    figures.add_row("fine-tuning", f"{engine.finetune.images_per_second:,.0f} img/s")
    figures.add_row(
        "tutorial DataLoader pipeline",
        f"{report.naive_finetune.images_per_second:,.0f} img/s "
        f"(salal {report.finetune_speedup_over_naive:.2f}x faster)",
    )
    score = engine.score_pool
    figures.add_row(
        f"scoring {score.pool:,} pool images ({score.acquisition})",
        f"{score.seconds:.3f} s: pool pass {score.pool_pass_seconds:.3f} s, "
        f"selection {score.select_seconds:.3f} s",
    )
    if report.end_to_end is not None:
        end = report.end_to_end
        accuracy = "—" if end.final_test_accuracy is None else f"{end.final_test_accuracy:.3f}"
        figures.add_row(
            f"whole run, {end.rounds} rounds", f"{end.seconds:.1f} s, accuracy {accuracy}"
        )
    tables = [figures]
    if report.ablation:
        variants = Table(title="one speed switch changed at a time")
        for name in ("variant", "pretraining img/s", "fine-tuning img/s", "scoring s", "warm-up s"):
            variants.add_column(name, justify="left" if name == "variant" else "right")
        for name, variant in report.ablation.items():
            if isinstance(variant, Skipped):
                variants.add_row(name, variant.reason, "", "", "", style="dim")
                continue
            timed = variant.figures
            warmup = (
                timed.pretrain.warmup_seconds
                + timed.finetune.warmup_seconds
                + timed.score_pool.warmup_seconds
            )
            variants.add_row(
                name,
                f"{timed.pretrain.images_per_second:,.0f}",
                f"{timed.finetune.images_per_second:,.0f}",
                f"{timed.score_pool.seconds:.3f}",
                f"{warmup:.1f}",
            )
        tables.append(variants)
    return tables
