"""What the engine is measured against in the small-folders study, on the very labels each
run chose: logistic regression on raw pixels, the same network trained from scratch, and label
propagation over a k-NN graph of the pretrained backbone's embeddings (Iscen et al., 2019)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from cpu_backbone import pretrained_net
from salal_core.config import RunConfig
from salal_core.data import DeviceData
from salal_core.learn.frozen import stage_features
from salal_core.learn.inference import evaluate
from salal_core.learn.model import Net, distance_embedding
from salal_core.learn.probe import fit_probe, probe_probs, standardize
from salal_core.learn.train import fit, prepare

SCRATCH_EPOCHS = 5  # the cpu recipe's round, from random weights


def pixels(data: DeviceData) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized raw pixels of the train and test images: (N, 3 * H * W)."""
    train = prepare(data.train_images, data).flatten(1)
    test = prepare(data.test_images, data).flatten(1)
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return standardize(train, mean, std), standardize(test, mean, std)


def raw_pixel_accuracy(
    x: torch.Tensor, y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, classes: int
) -> float:
    w = fit_probe(x, y, classes, torch.Generator().manual_seed(0))
    return float((probe_probs(w, test).mean(0).argmax(1) == test_y).float().mean())


class Propagation:
    """Label propagation (Zhou et al., 2004, as Iscen et al., 2019 use it): the labels diffuse
    over a k-NN graph of every image's embedding, train and test together, and each image takes
    the class with the most mass. The graph is built once; each set of labels is one solve."""

    def __init__(self, embeddings: torch.Tensor, k: int = 50, gamma: float = 3.0) -> None:
        x = torch.nn.functional.normalize(embeddings.float(), dim=1)
        similarity = x @ x.T
        similarity.fill_diagonal_(-1.0)
        values, columns = similarity.topk(min(k, len(x) - 1), dim=1)
        del similarity
        weights = torch.zeros(len(x), len(x)).scatter_(1, columns, values.clamp_min(0) ** gamma)
        weights = weights + weights.T  # symmetric: a neighbour's neighbour is one too
        scale = weights.sum(1).clamp_min(1e-12).rsqrt()
        self.normalized = scale[:, None] * weights * scale[None, :]

    def scores(
        self, rows: torch.Tensor, labels: torch.Tensor, classes: int, alpha: float = 0.99
    ) -> torch.Tensor:
        """(N, C) class mass: (I - alpha W) Z = Y by conjugate gradients, every class at once;
        Y weights each class by one over its label count, so a frequent class does not
        flood the graph."""
        y = torch.zeros(len(self.normalized), classes)
        y[rows, labels] = 1.0
        y /= y.sum(0).clamp_min(1.0)
        z, residual = torch.zeros_like(y), y.clone()
        direction, norm = residual.clone(), (residual * residual).sum(0)
        tolerance = 1e-12 * norm.max()
        for _ in range(50):  # each step reaches one hop further; image graphs are shallow
            step = direction - alpha * (self.normalized @ direction)
            rate = norm / (direction * step).sum(0).clamp_min(1e-20)
            z += rate * direction
            residual -= rate * step
            new_norm = (residual * residual).sum(0)
            if bool((new_norm <= tolerance).all()):
                break
            direction = residual + (new_norm / norm.clamp_min(1e-20)) * direction
            norm = new_norm
        return z


def pretrained_embeddings(config: RunConfig, data: DeviceData) -> torch.Tensor:
    """The pretrained backbone's distance embeddings (those selection uses), train rows then
    test rows, with BatchNorm statistics recomputed over the upright pool as the engine does."""
    model = pretrained_net(config, data, Path(config.model.pretrained))
    parts = [
        stage_features(model, images, data, config.eval_batch_size)
        for images in (data.train_images, data.test_images)
    ]
    return torch.cat([distance_embedding(part.third, part.last) for part in parts])


def propagation_accuracy(graph: Propagation, positions: torch.Tensor, data: DeviceData) -> float:
    scores = graph.scores(positions, data.train_labels[positions], data.num_classes)
    predicted = scores[data.num_train :].argmax(1)
    return float((predicted == data.test_labels).float().mean())


def scratch_accuracy(
    config: RunConfig, data: DeviceData, positions: torch.Tensor, seed: int
) -> float:
    """The same network from random weights, trained on these labels alone with the cpu
    recipe's round (its minimum steps included)."""
    torch.manual_seed(seed)
    model = Net(config.model.width, data.num_classes, head_input=config.model.head_input)
    optim = config.active.optim
    fit(
        model,
        data,
        positions,
        data.train_labels,
        optim,
        SCRATCH_EPOCHS,
        phase="finetune",
        round_=0,
        evaluate_fn=lambda: (math.nan, math.nan),
        emit=lambda event: None,
        generator=torch.Generator().manual_seed(seed),
    )
    return evaluate(model, data.test_images, data.test_labels, data, 512)[1]
