"""CIFAR ResNet18: 3x3 stem with stride 1 and no max-pool (32x32 inputs keep their detail),
8*width-d features (512 at the standard width 64), and a swappable linear head that sees the
last stage's pooled features or, on request, every stage's."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from salal_core.config import HeadInput


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


def _pooled(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C): global average pooling."""
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


@dataclass(frozen=True)
class StageFeatures:
    """One pass's pooled features: what distances and the head read."""

    third: torch.Tensor  # (B, 4w): the third stage, the most general rotation features
    last: torch.Tensor  # (B, 8w)
    head: torch.Tensor  # (B, D): the head's input; `last` itself for a "last" head


class Backbone(nn.Module):
    """(B, 3, H, W) -> pooled features for a head (`HeadInput`), and on request the third and
    last stages' pooled features too: rotation features are at their most general in the third
    (Gidaris et al., 2018), which is what distances between images want."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.width = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)

    def head_dim(self, head_input: HeadInput) -> int:
        """8w for the last stage; w + w + 2w + 4w + 8w for the stem and every stage."""
        return 8 * self.width if head_input == "last" else 16 * self.width

    def forward(self, x: torch.Tensor, head_input: HeadInput = "last") -> torch.Tensor:
        """(B, 3, H, W) -> (B, head_dim) the head's input."""
        return self.forward_stages(x, head_input).head

    def forward_stages(self, x: torch.Tensor, head_input: HeadInput = "last") -> StageFeatures:
        """Every pooled feature a head or a distance needs, from one pass. The stem and the
        first two stages are pooled only for an all-stages head: at full resolution they are
        the costly maps to pool, and no one else reads them."""
        x = self.stem(x)
        pooled = [_pooled(x)] if head_input == "all-stages" else []
        for start in range(0, len(self.stages), 2):  # two blocks a stage
            x = self.stages[start : start + 2](x)
            if head_input == "all-stages" or start >= 4:  # stages 3 and 4 are always pooled
                pooled.append(_pooled(x))
        third, last = pooled[-2], pooled[-1]
        return StageFeatures(third, last, last if head_input == "last" else torch.cat(pooled, 1))


def distance_embedding(third: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """(B, 4w), (B, 8w) -> (B, 12w): both stages' pooled features, each at unit length."""
    return torch.cat([F.normalize(t.float(), dim=1) for t in (third, last)], dim=1)


class Heads(nn.Module):
    """K linear heads in one matmul: (B, D) -> (B, K, C). K > 1 makes a committee for qbc."""

    def __init__(self, feature_dim: int, classes: int, members: int = 1) -> None:
        super().__init__()
        self.members, self.classes = members, classes
        self.linear = nn.Linear(feature_dim, members * classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.linear(features)
        return logits.view(-1, self.members, self.classes)


class Net(nn.Module):
    """Backbone plus heads; `logits` has shape (B, K, C)."""

    def __init__(
        self, width: int = 64, classes: int = 4, members: int = 1, head_input: HeadInput = "last"
    ) -> None:
        super().__init__()
        self.head_input = head_input
        self.backbone = Backbone(width)
        self.head = Heads(self.backbone.head_dim(head_input), classes, members)

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """The backbone from a whole network's state dict (a rotation model's, or another
        head's): the features carry over, whatever head they were trained under."""
        self.backbone.load_state_dict(
            {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
        )

    def replace_head(self, classes: int, members: int = 1) -> None:
        """Swap the head (4-way rotation -> linear to C classes), keeping the features."""
        ref = self.head.linear.weight
        dim = self.backbone.head_dim(self.head_input)
        self.head = Heads(dim, classes, members).to(ref.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K, C)."""
        logits: torch.Tensor = self.head(self.backbone(x, self.head_input))
        return logits

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What selection needs from one pass: logits (B, K, C), the head's input features
        (B, D, for gradient embeddings), and an embedding for distances (B, 12w): the third
        and last stages' pooled features, each scaled to unit length."""
        stages = self.backbone.forward_stages(x, self.head_input)
        embedding = distance_embedding(stages.third, stages.last)
        return self.head(stages.head), stages.head, embedding
