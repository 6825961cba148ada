"""Model shapes for both heads, and checkpoints that round-trip with weights_only."""

from pathlib import Path

import pytest
import torch

from helpers import drawn_data
from salal_core.config import PRESETS, with_overrides
from salal_core.errors import SalalError
from salal_core.learn.inference import evaluate
from salal_core.learn.model import Net
from salal_core.learn.pretrain import PRETRAIN_VERSION, PretrainCheckpoint


def test_rotation_and_class_heads() -> None:
    net = Net(width=8, classes=4)
    x = torch.rand(5, 3, 32, 32)
    assert net.backbone(x).shape == (5, 64)
    assert net(x).shape == (5, 1, 4)
    net.replace_head(10, members=3)
    assert net(x).shape == (5, 3, 10)
    assert Net(width=64).backbone.head_dim("last") == 512


def test_an_all_stages_head_reads_every_stage_pooled_and_keeps_the_distances() -> None:
    """The stem's and the four stages' pooled features side by side (w + w + 2w + 4w + 8w);
    the distance embedding and the last stage are those of a "last" head on the same weights."""
    torch.manual_seed(0)
    wide = Net(width=8, classes=10, head_input="all-stages").eval()
    plain = Net(width=8, classes=10).eval()
    plain.backbone.load_state_dict(wide.backbone.state_dict())
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        logits, head, embedding = wide.score(x)
        assert torch.allclose(wide(x), logits, atol=1e-6)
        _, last, plain_embedding = plain.score(x)
        stem = wide.backbone.stem(x).mean((2, 3))
    assert logits.shape == (5, 1, 10) and head.shape == (5, 128)
    assert torch.allclose(head[:, :8], stem, atol=1e-6)
    assert torch.allclose(head[:, -64:], last, atol=1e-6)
    assert torch.allclose(embedding, plain_embedding, atol=1e-6)
    wide.replace_head(3, members=2)
    assert wide.head.linear.in_features == 128


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    config = with_overrides(PRESETS["tiny"], {"model.width": 4})
    net = Net(width=4, classes=4)
    path = tmp_path / "pretrain.pt"
    torch.save(PretrainCheckpoint.of(net, config, {"rotation_accuracy": 0.5}).to_payload(), path)
    assert torch.load(path, weights_only=True)["version"] == PRETRAIN_VERSION
    read = PretrainCheckpoint.read(path)
    assert read.results == {"rotation_accuracy": 0.5} and read.width == 4
    other = Net(width=4, classes=10)
    read.load_into(other, config, str(path))
    for a, b in zip(
        net.backbone.state_dict().values(), other.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_a_checkpoint_from_before_the_version_still_reads(tmp_path: Path) -> None:
    config = with_overrides(PRESETS["tiny"], {"model.width": 4})
    net = Net(width=4, classes=4)
    path = tmp_path / "pretrain.pt"
    unversioned = {"kind": "pretrain", "model": net.state_dict(), "config": {}, "width": 4}
    torch.save({**unversioned, "rotation_accuracy": 0.25}, path)
    read = PretrainCheckpoint.read(path)
    assert read.results == {"rotation_accuracy": 0.25}
    read.load_into(Net(width=4, classes=10), config, str(path))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        (b"not a checkpoint", "is not a readable checkpoint"),
        ({"kind": "round", "model": {}}, "is not a salal pretraining checkpoint"),
        ({"kind": "pretrain", "version": 99}, "written by a newer salal"),
        ({"kind": "pretrain", "version": 1, "model": {}}, "is a damaged pretraining checkpoint"),
    ],
)
def test_an_unusable_pretrain_file_is_one_line(tmp_path: Path, content: object, says: str) -> None:
    path = tmp_path / "pretrain.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(SalalError, match=says) as raised:
        PretrainCheckpoint.read(path)
    assert "\n" not in str(raised.value)


def test_checkpoint_of_another_width_is_refused() -> None:
    config = with_overrides(PRESETS["tiny"], {"model.width": 4})
    checkpoint = PretrainCheckpoint.of(Net(width=4), config, {})
    wider = with_overrides(config, {"model.width": 8})
    with pytest.raises(SalalError, match="--width 4 but this run uses 8"):
        checkpoint.load_into(Net(width=8), wider, "x.pt")


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
