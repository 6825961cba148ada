"""The learner for few labels: the head fit to convergence on the frozen backbone's features.

With a few dozen labels, fine-tuning a whole network takes a handful of optimizer steps on
images it then memorises; a linear head on fixed features is convex, reaches its optimum in a
blink, and chooses its own regularisation by cross-validation (`probe.py`). The backbone does
not change while the head alone learns, so its features are computed once, over every image
of this rank's shard, and serve every round's fit and the pool pass too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from salal_core.data import DeviceData
from salal_core.distributed import all_sum
from salal_core.learn.batchnorm import recalibrate
from salal_core.learn.inference import fixed_batches
from salal_core.learn.model import Net, StageFeatures, distance_embedding
from salal_core.learn.probe import fit_probe, probe_probs, standardize
from salal_core.learn.train import prepare
from salal_core.runtime import autocast, mark_step


@dataclass(frozen=True)
class FrozenFeatures:
    """The backbone's pooled features of this rank's training images, in shard order."""

    stages: StageFeatures  # (N_local, ...): the head's input, and the distances' stages
    test_head: torch.Tensor  # (N_test_local, D): the test split's, for measuring each round
    mean: torch.Tensor  # (D,) over every rank's images: the head standardizes with these
    std: torch.Tensor

    @classmethod
    @torch.no_grad()
    def compute(cls, model: Net, data: DeviceData, batch_size: int) -> FrozenFeatures:
        """BatchNorm statistics recomputed over the upright pool first: the features are those
        the network will score and predict with."""
        rows = torch.arange(data.train_images.shape[0], device=data.device)
        recalibrate(model, data, rows, rotate=False)
        stages = stage_features(model, data.train_images, data, batch_size)
        test_head = stage_features(model, data.test_images, data, batch_size).head
        head = stages.head
        moments = all_sum(
            torch.cat(
                [
                    head.sum(0),
                    head.double().square().sum(0).float(),
                    torch.tensor([float(len(head))], device=head.device),
                ]
            )
        )
        d = head.shape[1]
        n = moments[-1].clamp_min(2.0)
        mean = moments[:d] / n
        std = ((moments[d : 2 * d] / n - mean.square()).clamp_min(0) * n / (n - 1)).sqrt()
        return cls(stages, test_head, mean, std.clamp_min(1e-6))

    def rows_of(self, positions: torch.Tensor, data: DeviceData) -> torch.Tensor:
        """The head's standardized input for global `positions`, on every rank (each rank
        contributes the rows it holds; one sum puts them together)."""
        mine = data.shard.mine(positions)
        head = self.stages.head
        out = torch.zeros(len(positions), head.shape[1], device=head.device)
        out[mine] = head[positions[mine] // data.shard.size]
        return standardize(all_sum(out), self.mean, self.std)

    def scores(
        self, model: Net, local_rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What `Net.score` gives, from the cached features: probabilities (K, P, C), the
        head's input (P, D) and the distance embedding (P, 12w)."""
        head = self.stages.head[local_rows]
        with torch.inference_mode():
            probs = model.head(head).float().softmax(-1).permute(1, 0, 2)
        embedding = distance_embedding(self.stages.third[local_rows], self.stages.last[local_rows])
        return probs, head, embedding

    @torch.inference_mode()
    def evaluate(
        self, model: Net, head: torch.Tensor, targets: torch.Tensor
    ) -> tuple[float, float]:
        """(loss, accuracy) of the head on cached features `head` (N, D), summed over every
        rank as `inference.evaluate` does for images."""
        probs = model.head(head).float().softmax(-1).mean(1)  # committee mean, (N, C)
        nll = F.nll_loss(probs.clamp_min(1e-12).log(), targets, reduction="sum")
        right = (probs.argmax(1) == targets).sum()
        count = torch.tensor(float(len(targets)), device=head.device)
        loss, correct, total = all_sum(torch.stack([nll, right.float(), count])).tolist()
        return (loss / total, correct / total) if total else (float("nan"), float("nan"))


def stage_features(
    model: Net, images: torch.Tensor, data: DeviceData, batch_size: int
) -> StageFeatures:
    """The pooled features of uint8 images that `model`'s head and distances read, float32,
    in eval mode."""
    model.eval()
    thirds, lasts, heads = [], [], []
    with torch.inference_mode():
        for chunk, real in fixed_batches(images, batch_size):
            mark_step()
            with autocast(data.device):
                out = model.backbone.forward_stages(prepare(chunk, data), model.head_input)
            thirds.append(out.third[:real].to(torch.float32, copy=True))
            lasts.append(out.last[:real].to(torch.float32, copy=True))
            if model.head_input != "last":
                heads.append(out.head[:real].to(torch.float32, copy=True))
    # Out of inference mode: the cached tensors are read by code that records gradients.
    third, last = torch.cat(thirds).clone(), torch.cat(lasts).clone()
    return StageFeatures(third, last, torch.cat(heads).clone() if heads else last)


@torch.no_grad()
def fit_head(
    model: Net,
    features: FrozenFeatures,
    data: DeviceData,
    positions: torch.Tensor,
    targets: torch.Tensor,
    generator: torch.Generator,
) -> tuple[float, float]:
    """Fit `model`'s head (K members, bootstrap weights for K > 1) on the labeled positions'
    frozen features, to convergence; returns its (loss, accuracy) on those labels.

    The fit works on standardized features; the standardization is folded into the linear
    layer, so the network alone predicts exactly what the fit found."""
    head = model.head
    x = features.rows_of(positions, data)
    seed = torch.randint(0, 2**31, (1,), generator=generator, device=generator.device)
    cpu = torch.Generator().manual_seed(int(seed))  # the bootstrap, alike on every device
    w = fit_probe(x.cpu(), targets.cpu(), head.classes, cpu, head.members).to(x.device)
    d = x.shape[1]
    weight, bias = w[:, :d, :], w[:, d, :]  # (K, D, C), (K, C)
    scale = features.std.view(1, d, 1)
    raw_weight = weight / scale  # logits = ((f - mean) / std) W + b = f (W / std) + b'
    raw_bias = bias - torch.einsum("d,kdc->kc", features.mean, raw_weight)
    # Linear's rows are member-major: output k * C + c is member k's class c.
    head.linear.weight.copy_(raw_weight.permute(0, 2, 1).reshape(-1, d))
    head.linear.bias.copy_(raw_bias.reshape(-1))
    probs = probe_probs(w, x).mean(0)
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), targets)
    return float(loss), float((probs.argmax(1) == targets).float().mean())
