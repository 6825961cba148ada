"""CIFAR ResNet18: 3x3 stem with stride 1 and no max-pool (32x32 inputs keep their detail),
8*width-d features (512 at the standard width 64), and a swappable linear head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


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


class Backbone(nn.Module):
    """(B, 3, H, W) -> (B, 8 * width) pooled features, and on request the third stage's pooled
    features (B, 4 * width) too: rotation features are at their most general there (Gidaris et
    al., 2018), which is what distances between images want."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.feature_dim = 8 * width
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pooled(self.stages(self.stem(x)))

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(third stage pooled (B, 4w), last stage pooled (B, 8w)) from one pass."""
        third = self.stages[:6](self.stem(x))  # two blocks per stage
        last = self.stages[6:](third)
        return _pooled(third), _pooled(last)


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

    def __init__(self, width: int = 64, classes: int = 4, members: int = 1) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        self.head = Heads(self.backbone.feature_dim, classes, members)

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """The backbone from a whole network's state dict (a rotation model's, or another
        head's): the features carry over, whatever head they were trained under."""
        self.backbone.load_state_dict(
            {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
        )

    def replace_head(self, classes: int, members: int = 1) -> None:
        """Swap the head (4-way rotation -> linear 512->C classes), keeping the features."""
        ref = self.head.linear.weight
        self.head = Heads(self.backbone.feature_dim, classes, members).to(ref.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K, C)."""
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What selection needs from one pass: logits (B, K, C), the head's input features
        (B, 8w, for gradient embeddings), and an embedding for distances (B, 12w): the third
        and last stages' pooled features, each scaled to unit length."""
        third, last = self.backbone.forward_stages(x)
        embedding = distance_embedding(third, last)
        return self.head(last), last, embedding
