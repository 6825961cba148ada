"""The small-folders study runs end to end in its smoke mode: real folders cut from the pack,
one pretraining, the engine from zero labels with random and the person's default strategy,
and the raw-pixel baseline on the very labels each run chose."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from helpers import SHARED_PACK, load_benchmark


def test_label_propagation_follows_the_graph_where_the_nearest_label_cannot() -> None:
    """Two parallel arcs on the sphere (the embeddings are compared by angle), each labeled at
    opposite ends: past halfway, the nearest labeled point is the other arc's; diffusion along
    the k-NN graph stays on its own arc."""
    baselines = load_benchmark("folder_baselines")
    longitude = torch.linspace(0, math.pi, 40)

    def arc(latitude: float) -> torch.Tensor:
        lat = torch.full_like(longitude, latitude)
        return torch.stack([lat.cos() * longitude.cos(), lat.cos() * longitude.sin(), lat.sin()], 1)

    points = torch.cat([arc(0.0), arc(0.6)])
    truth = torch.cat([torch.zeros(40), torch.ones(40)]).long()
    labeled = torch.tensor([0, 79])  # arc 0 at longitude 0, arc 1 at longitude pi
    graph = baselines.Propagation(points, k=4, gamma=1.0)
    predicted = graph.scores(labeled, truth[labeled], 2).argmax(1)
    assert (predicted == truth).float().mean() > 0.95
    nearest = torch.cdist(points, points[labeled]).argmin(1)
    assert (nearest == truth).float().mean() < 0.8


def test_the_quick_study_reports_the_engine_against_raw_pixels(tmp_path: Path) -> None:
    study = load_benchmark("small_folders")
    report = study.main(["--quick", "--pack", str(SHARED_PACK), "--out", str(tmp_path)])
    (folder,) = report["folders"]
    assert folder["folder"] == "300"
    default = study.DEFAULT_STRATEGY  # the person's strategy, run beside random
    cells = {(c["strategy"], c["labels"]): c for c in folder["cells"]}
    assert set(cells) == {(s, n) for s in ("random", default) for n in (10, 20)}
    for cell in cells.values():
        assert 0 < cell["engine"] <= 1 and 0 < cell["raw_pixels"] <= 1
        assert 0 < cell["propagation"] <= 1
        assert cell["diff"] == cell["engine"] - cell["raw_pixels"] or math.isclose(
            cell["diff"], cell["engine"] - cell["raw_pixels"], abs_tol=1e-9
        )
        assert 0 < cell["round_seconds"] <= cell["slowest_round_seconds"]
    assert {a["strategy"] for a in folder["aubc"]} == {"random", default}
    # Against random, paired by seed: the mean of the paired differences is the difference of
    # the means, at each budget the runs reached.
    (strategy, versus), *others = folder["minus_random"].items()
    assert strategy == default and not others
    assert [b["labels"] for b in versus["budgets"]] == [10, 20]
    for gap in versus["budgets"]:
        apart = (
            cells[(default, gap["labels"])]["engine"] - cells[("random", gap["labels"])]["engine"]
        )
        assert math.isclose(gap["diff"], apart, abs_tol=1e-9)
        assert gap["low"] <= gap["diff"] <= gap["high"]
    aubc = {a["strategy"]: a["engine"] for a in folder["aubc"]}
    assert math.isclose(versus["aubc"]["diff"], aubc[default] - aubc["random"], abs_tol=1e-9)
    # The folder was cut class-balanced: 30 a class for training, 40 a class for testing.
    counts = [
        len(list(d.iterdir())) for d in sorted((tmp_path / "folders" / "300" / "train").iterdir())
    ]
    assert counts == [30] * 10


def test_a_sampled_kmeans_arm_clusters_a_sample_and_puts_the_exact_path_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--sampled-kmeans` adds an arm for each clustering strategy asked for; inside it every
    k-means iterates on SAMPLE_PER_CLUSTER points a cluster, even on a pool the engine would
    cluster exactly, and outside it the engine's own rule is back."""
    runs = load_benchmark("folder_runs")
    from salal_core.selection import clustering

    assert [a.name for a in runs.arms(["random", "typiclust"], True)] == [
        "random",
        "typiclust",
        "typiclust, sampled k-means",
    ]
    assert [a.name for a in runs.arms(["random", "typiclust"], False)] == ["random", "typiclust"]
    iterated_on: list[int] = []
    lloyd = clustering._lloyd

    def recording(x: torch.Tensor, *args: object, **kwargs: object) -> object:
        iterated_on.append(x.shape[0])
        return lloyd(x, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(clustering, "_lloyd", recording)
    points = torch.randn(600, 8, generator=torch.Generator().manual_seed(0))
    with runs.kmeans_path(runs.Arm("typiclust", sampled_kmeans=True)):
        assert len(clustering.kmeans(points, 10, torch.Generator().manual_seed(0))) == 600
    assert iterated_on == [clustering.SAMPLE_PER_CLUSTER * 10]
    iterated_on.clear()
    clustering.kmeans(points, 10, torch.Generator().manual_seed(0))
    assert iterated_on and set(iterated_on) == {600}


def test_a_study_of_the_fractions_alone_reports_its_cells_and_no_aubc() -> None:
    """`--plans fractions` reads the curve at 20% and 50% only: the cells are reported, paired
    by seed against raw pixels, and the AUBC and the comparisons built on it are left out
    rather than computed over no budgets."""
    report = load_benchmark("folder_report")
    rows = [
        {
            "strategy": strategy,
            "acquisition": strategy,
            "backbone": "rotnet",
            "seed": seed,
            "labels": labels,
            "engine": 0.3 + 0.01 * seed + 0.001 * labels / 100,
            "raw_pixels": 0.2 + 0.02 * seed,
            "propagation": 0.25,
            "scratch": math.nan,
            "fine_tuned": True,
            "round_seconds": 4.0,
            "slowest_round_seconds": 6.0,
        }
        for strategy in ("random", "typiclust")
        for seed in range(3)
        for labels in (200, 500)
    ]
    summary = report.summarize("1000", {"rows": rows, "pretrain_seconds": 1.0})
    assert [(c["strategy"], c["labels"]) for c in summary["cells"]] == [
        ("random", 200),
        ("random", 500),
        ("typiclust", 200),
        ("typiclust", 500),
    ]
    cell = summary["cells"][0]
    assert math.isclose(cell["diff"], 0.3 + 0.002 - 0.2 - 0.01, abs_tol=1e-9)  # seeds' mean gap
    assert cell["diff_low"] < cell["diff"] < cell["diff_high"]
    assert summary["aubc"] == [] and "minus_random" not in summary
    report.table(summary)  # renders without an AUBC row


def test_a_pretrained_backbone_is_paired_with_rotnet_and_with_random_on_itself() -> None:
    """With a backbone axis, each pretrained backbone's strategy is compared with the same
    strategy on rotnet, and with random labels on the same backbone, paired by seed."""
    report = load_benchmark("folder_report")
    runs = load_benchmark("folder_runs")
    lift = {"rotnet": 0.0, "efficientnet_lite0": 0.2}
    rows = [
        {
            "strategy": runs.Arm(acquisition, False, backbone).name,
            "acquisition": acquisition,
            "backbone": backbone,
            "seed": seed,
            "labels": labels,
            "engine": 0.3 + lift[backbone] + 0.01 * seed + (acquisition == "typiclust") * 0.02,
            "raw_pixels": 0.2,
            "propagation": 0.25,
            "scratch": math.nan,
            "fine_tuned": False,
            "round_seconds": 1.0,
            "slowest_round_seconds": 2.0,
        }
        for backbone in lift
        for acquisition in ("random", "typiclust")
        for seed in range(3)
        for labels in runs.BUDGETS
    ]
    summary = report.summarize("300", {"rows": rows, "embedding": {"x": 1}})
    assert set(summary["minus_rotnet"]) == {
        "random on efficientnet_lite0",
        "typiclust on efficientnet_lite0",
    }
    for gap in summary["minus_rotnet"].values():
        assert math.isclose(gap["aubc"]["diff"], 0.2, abs_tol=1e-9)
    assert set(summary["minus_random"]) == {"typiclust", "typiclust on efficientnet_lite0"}
    for gap in summary["minus_random"].values():
        assert math.isclose(gap["aubc"]["diff"], 0.02, abs_tol=1e-9)
    assert summary["embedding"] == {"x": 1}
    report.random_table(summary, "minus_rotnet")
