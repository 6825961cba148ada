"""Fine-tuning a pretrained backbone: the probe as its first classifier, the steps it takes,
what `--fine-tune` means on each device, and a round that trains the network and not the copy
it came from. A small network stands in for a pretrained one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from salal_core.backbones.catalog import BackboneSpec
from salal_core.events import Recorder, StepProgress
from salal_core.learn.probe import fit_probe, probe_probs, standardize
from salal_core.learn.tune import RECIPE, fine_tune, head_layer, tune_steps
from salal_core.learn.tuned_input import tune_mode

SPEC = BackboneSpec("toy", "torchvision", "toy", "none", 8, 16, 0.0, 0.0)


def toy_backbone() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()


def test_the_probe_becomes_a_layer_on_raw_features_with_the_same_logits() -> None:
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(40, 5, generator=g) * 3 + 2
    y = torch.arange(40) % 3
    mean, std = raw.mean(0), raw.std(0)
    weight = fit_probe(standardize(raw, mean, std), y, 3, g)
    layer = head_layer(weight[0], mean, std)
    expected = probe_probs(weight, standardize(raw, mean, std))[0]
    assert torch.allclose(layer(raw).softmax(1), expected, atol=1e-5)


def test_steps_are_ten_passes_over_the_labels_within_bounds_or_as_asked() -> None:
    assert tune_steps(10) == 50  # a few labels still move the network
    assert tune_steps(320) == 10 * 320 // RECIPE.batch_size
    assert tune_steps(5_000) == 500  # thousands do not make a round take minutes
    assert tune_steps(5_000, asked=7) == 7


@pytest.mark.parametrize(
    ("setting", "device", "mode"),
    [
        ("auto", "cuda", "check"),
        ("auto", "cpu", None),
        ("check", "cpu", "check"),
        ("always", "cpu", "always"),
        ("off", "cuda", None),
    ],
)
def test_what_fine_tune_means_on_each_device(setting: str, device: str, mode: str | None) -> None:
    assert tune_mode(setting, torch.device(device)) == mode  # type: ignore[arg-type]


def test_fine_tuning_trains_a_copy_from_the_probe_and_leaves_the_base_alone() -> None:
    """Two classes apart in the blue channel only, which the base network barely sees: the
    tuned copy's features set them far further apart, and the base network is untouched."""
    g = torch.Generator().manual_seed(2)
    y = torch.arange(32) % 2
    colour = torch.stack([torch.tensor([128, 128, 70]), torch.tensor([128, 128, 190])])[y]
    noise = torch.randint(-40, 40, (32, 3, 16, 16), generator=g)
    pixels = (colour.view(32, 3, 1, 1) + noise).clamp(0, 255).to(torch.uint8)
    base = toy_backbone()
    with torch.no_grad():
        base[0].weight[:, 2] *= 0.01
    before = {k: v.clone() for k, v in base.state_dict().items()}
    normalized = (pixels.float() / 255 - torch.tensor(SPEC.mean).view(1, 3, 1, 1)) / torch.tensor(
        SPEC.std
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        raw = base(normalized)
    mean, std = raw.mean(0), raw.std(0).clamp_min(1e-6)
    probe = fit_probe(standardize(raw, mean, std), y, 2, g, l2=1.0)[0]  # a strong penalty
    head = head_layer(probe, mean, std)
    events = Recorder()
    tuned = fine_tune(
        base, head, pixels.__getitem__, y, SPEC, 60, torch.device("cpu"), g, events, 3
    )

    def separation(net: nn.Module) -> float:
        """Distance between the classes' mean features over their spread (Fisher's ratio)."""
        with torch.no_grad():
            f = net(normalized)
        a, b = f[y == 0], f[y == 1]
        return float((a.mean(0) - b.mean(0)).pow(2).sum() / (a.var(0) + b.var(0)).sum())

    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())
    assert not tuned.training and not any(p.requires_grad for p in tuned.parameters())
    assert separation(tuned) > 3 * separation(base)
    progress = events.of(StepProgress)  # one epoch of 60 steps, as the progress bars count
    assert (progress[-1].epoch, progress[-1].step, progress[-1].steps) == (1, 60, 60)
