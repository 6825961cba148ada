"""Model shapes for both heads, and checkpoints that round-trip with weights_only."""

from pathlib import Path

import pytest
import torch

from helpers import drawn_data
from salal_core.config import PRESETS, with_overrides
from salal_core.errors import SalalError
from salal_core.inference import evaluate
from salal_core.model import Net
from salal_core.pretrain import load_pretrained, pretrain_payload


def test_rotation_and_class_heads() -> None:
    net = Net(width=8, classes=4)
    x = torch.rand(5, 3, 32, 32)
    assert net.backbone(x).shape == (5, 64)
    assert net(x).shape == (5, 1, 4)
    net.replace_head(10, members=3)
    assert net(x).shape == (5, 3, 10)
    assert Net(width=64).backbone.feature_dim == 512


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    config = with_overrides(PRESETS["tiny"], {"model.width": 4})
    net = Net(width=4, classes=4)
    path = tmp_path / "pretrain.pt"
    torch.save(pretrain_payload(net, config, {"rotation_accuracy": 0.5}), path)
    payload = torch.load(path, weights_only=True)
    other = Net(width=4, classes=10)
    load_pretrained(payload, config, other, str(path))
    for a, b in zip(
        net.backbone.state_dict().values(), other.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_checkpoint_of_another_width_is_refused() -> None:
    config = with_overrides(PRESETS["tiny"], {"model.width": 4})
    payload = pretrain_payload(Net(width=4), config, {})
    wider = with_overrides(config, {"model.width": 8})
    with pytest.raises(SalalError, match="--width 4 but this run uses 8"):
        load_pretrained(payload, wider, Net(width=8), "x.pt")


@pytest.mark.parametrize("task", ["classes", "rotation"])
def test_evaluation_runs_in_one_fixed_batch_shape_and_counts_only_real_rows(task: str) -> None:
    data = drawn_data(37)
    torch.manual_seed(0)
    net = Net(width=4, classes=4)
    shapes: set[int] = set()
    net.register_forward_pre_hook(lambda module, args: shapes.add(args[0].shape[0]))
    y = data.test_labels if task == "classes" else None
    ragged = evaluate(net, data.test_images, y, data, batch_size=8)  # 37 = 4 x 8 + 5
    shapes_seen, shapes = set(shapes), set()
    whole = evaluate(net, data.test_images, y, data, batch_size=64)  # one batch of 37
    assert shapes_seen == {8 if task == "classes" else 32}
    assert ragged == pytest.approx(whole, rel=1e-4)
