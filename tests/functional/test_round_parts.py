"""The round-parts benchmark times the engine's own round for each head input, epoch count and
inference batch asked for, on one backbone: the same optimizer steps, the test split measured
once an epoch."""

from __future__ import annotations

from pathlib import Path

from helpers import load_benchmark, random_backbone, write_image_folder
from salal_core.config import HUMAN_EPOCHS_PER_ROUND, preset

WIDTH = 4


def test_each_epoch_count_and_inference_batch_gets_one_timed_round_of_the_same_steps(
    tmp_path: Path,
) -> None:
    folder = write_image_folder(tmp_path / "shapes", per_class_train=10, per_class_test=4)
    checkpoint = random_backbone(tmp_path / "pretrain.pt", WIDTH)
    report = load_benchmark("round_parts").main(
        [
            "--folder", str(folder),
            "--pretrained", str(checkpoint),
            "--width", str(WIDTH),
            "--labels", "12",
            "--query", "3",
            "--repeats", "1",
            "--heads", "all-stages",
            "--eval-batches", "8,4",
            "--cache", str(tmp_path / "cache"),
        ]
    )  # fmt: skip
    cpu_epochs, person_epochs = preset("cpu").active.epochs_per_round, HUMAN_EPOCHS_PER_ROUND["cpu"]
    rounds = {(r["head_input"], r["epochs"], r["eval_batch_size"]): r for r in report["rounds"]}
    assert set(rounds) == {
        ("all-stages", epochs, batch) for epochs in (cpu_epochs, person_epochs) for batch in (8, 4)
    }
    for (_, epochs, _), r in rounds.items():
        assert r["steps"] == preset("cpu").active.optim.min_steps  # 12 labels: the minimum
        assert r["evaluations"] == epochs
        assert all(r[part] >= 0 for part in ("training", "evaluation", "pool_pass", "selection"))
    assert len(report["medians"]) == 4
