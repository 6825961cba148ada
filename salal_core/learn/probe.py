"""Linear probes on frozen features: softmax regression, full batch, to convergence.

A few hundred labels train in a blink, which makes them the learner for few labels (the head of
a round, `learner.py`), the tool for measuring features (the studies), and the source of
out-of-sample scores for every label (review). The problem is convex: L-BFGS reaches its
optimum in tens of iterations, and the one free choice, the L2 strength, is measured by k-fold
cross-validation on the labels themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from salal_core.runtime import one_thread

L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)  # per-label-mean penalty on the standardized weights
FOLDS = 5
MAX_ITERATIONS = 100
# A cross-validation fit only has to rank its held-out labels, which settle well before the
# loss's last digits do; on weak penalties the full 100 steps cost twice the time.
FOLD_ITERATIONS = 50
# Past curvature pairs L-BFGS keeps: scipy's default. The problems are small, so a step's cost
# is mostly the two-loop recursion over this history, not the arithmetic of the loss.
HISTORY = 10


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean) / std


def fit_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    generator: torch.Generator,
    members: int = 1,
    l2: float | None = None,
) -> torch.Tensor:
    """K probes, each on its own bootstrap weights when K > 1: (N, E) -> (K, E + 1, C).

    `x` should be standardized (features of the pool: unlabeled images set the scale).
    `l2` None chooses it by cross-validation on these labels."""
    if l2 is None:
        l2 = choose_l2(x, y, classes)
    n = x.shape[0]
    weights = torch.ones(members, n, device=x.device)
    if members > 1:
        weights = torch.poisson(torch.ones(members, n, device=x.device), generator=generator)
    return _lbfgs(x, y, classes, weights, l2)


def probe_probs(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(K, E + 1, C), (N, E) -> (K, N, C) class probabilities."""
    xb = torch.cat([x, torch.ones(x.shape[0], 1, device=x.device)], 1)
    return torch.einsum("ne,kec->knc", xb, w).softmax(-1)


def choose_l2(x: torch.Tensor, y: torch.Tensor, classes: int) -> float:
    """The L2 strength of `L2_GRID` with the best k-fold accuracy (ties: the stronger one,
    which is the safer bet on few labels)."""
    return cross_validate(x, y, classes).l2


@dataclass(frozen=True)
class HeldOutScore:
    """k-fold cross-validation of a probe on some labels: the best L2 strength of `L2_GRID`,
    and whether each label, held out, was predicted right at that strength (in label order,
    so two inputs' scores on the same labels can be compared label by label)."""

    l2: float
    right: torch.Tensor  # (N,) bool; empty where fewer than two labels leave nothing to hold out

    @property
    def accuracy(self) -> float:
        return float(self.right.float().mean()) if len(self.right) else float("nan")


def cross_validate(x: torch.Tensor, y: torch.Tensor, classes: int) -> HeldOutScore:
    """Each strength of `L2_GRID` by k-fold accuracy on these labels; the best one (ties: the
    stronger, the safer bet on few labels). Folds are the labels in order, dealt round-robin
    (`fold_of`), so a class's labels spread over the folds."""
    folds = min(FOLDS, x.shape[0])
    if folds < 2:
        return HeldOutScore(L2_GRID[-1], torch.zeros(0, dtype=torch.bool))
    fold = fold_of(x.shape[0]).to(x.device)
    right = HeldOutTally(x.shape[0])
    for k in range(folds):
        train, test = fold != k, fold == k
        right.add(test.cpu(), fold_predictions(x[train], y[train], x[test], classes), y[test])
    return right.best()


def fold_of(count: int) -> torch.Tensor:
    """Each of `count` labels' fold: `FOLDS` of them (fewer on fewer labels), round-robin."""
    return torch.arange(count) % max(1, min(FOLDS, count))


def fold_predictions(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, classes: int
) -> dict[float, torch.Tensor]:
    """Each strength of `L2_GRID` -> its probe's classes for `x_test`, fit on the fold's other
    labels."""
    # One change of basis a fold, shared by every strength of its path (see `_minimise`): the
    # held-out rows are predicted in the same coordinates, which gives the same logits.
    if x_train.shape[0] < x_train.shape[1]:
        q, r = torch.linalg.qr(x_train.T)
        x_train, x_test = r.T, x_test @ q
    w, out = None, {}
    # Strongest penalty first, each fit starting from the last one's optimum: the path of
    # solutions moves little from one strength to the next, so L-BFGS takes few steps.
    for l2 in reversed(L2_GRID):
        w = _lbfgs(x_train, y_train, classes, torch.ones(1, len(x_train)), l2, w, FOLD_ITERATIONS)
        out[l2] = probe_probs(w, x_test).mean(0).argmax(1)
    return out


class HeldOutTally:
    """Which held-out labels each strength got right, fold by fold; the best strength at the
    end. Every input's folds are tallied the same way, so their verdicts compare fairly."""

    def __init__(self, count: int) -> None:
        self.right = {l2: torch.zeros(count, dtype=torch.bool) for l2 in L2_GRID}

    def add(
        self, held: torch.Tensor, predicted: dict[float, torch.Tensor], truth: torch.Tensor
    ) -> None:
        for l2, classes in predicted.items():
            self.right[l2][held] = (classes == truth).cpu()

    def best(self) -> HeldOutScore:
        best_l2 = max(reversed(L2_GRID), key=lambda l2: int(self.right[l2].sum()))  # ties: first
        return HeldOutScore(best_l2, self.right[best_l2])


def _lbfgs(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    weights: torch.Tensor,
    l2: float,
    start: torch.Tensor | None = None,
    iterations: int = MAX_ITERATIONS,
) -> torch.Tensor:
    """(K, E + 1, C) minimising each member's weighted mean cross-entropy + l2 * |W|^2, from
    `start` (zeros by default), in at most `iterations` L-BFGS steps."""
    with one_thread():
        return _minimise(x, y, classes, weights, l2, start, iterations)


def _minimise(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    weights: torch.Tensor,
    l2: float,
    start: torch.Tensor | None,
    iterations: int,
) -> torch.Tensor:
    members, (n, e) = weights.shape[0], x.shape
    if n < e:
        # Fewer labels than features: the optimum lies in the span of the labeled rows, so
        # the same problem is solved on their coordinates there (x^T = Q R, x = R^T Q^T,
        # W = Q V): the logits and the penalty are unchanged, and each step costs n, not E,
        # columns. (QR, not SVD: on CPUs the wide SVD is ten times slower.)
        q, r = torch.linalg.qr(x.T)  # q: (E, n), orthonormal columns
        inner = None
        if start is not None:
            inner = torch.cat([torch.einsum("en,kec->knc", q, start[:, :-1]), start[:, -1:]], 1)
        v = _minimise(r.T, y, classes, weights, l2, inner, iterations)
        return torch.cat([torch.einsum("en,knc->kec", q, v[:, :-1]), v[:, -1:]], 1)
    xb = torch.cat([x, torch.ones(n, 1, device=x.device)], 1)
    if start is None:
        start = torch.zeros(members, e + 1, classes, device=x.device)
    w = start.clone()
    optimizer = torch.optim.LBFGS(
        [w], lr=1.0, max_iter=iterations, history_size=HISTORY, line_search_fn="strong_wolfe"
    )
    # Each member's weight of each label in its mean: (K, N, 1).
    share = (weights / weights.sum(1, keepdim=True).clamp_min(1.0)).unsqueeze(2)
    target = F.one_hot(y, classes).to(x.dtype)  # (N, C)
    penalised = torch.ones(e + 1, 1, device=x.device)
    penalised[-1] = 0.0  # the bias row is not penalised: a class's prior is not a weight

    def closure() -> torch.Tensor:
        # The loss and its gradient by hand: the fit is a few hundred tiny steps, where
        # autograd's bookkeeping would cost more than the arithmetic.
        log_p = torch.matmul(xb, w).log_softmax(2)  # (K, N, C)
        value = -(log_p * target * share).sum() + l2 * (w * w * penalised).sum()
        gradient = torch.matmul(xb.T, (log_p.exp() - target) * share)  # (K, E + 1, C)
        w.grad = (gradient + 2 * l2 * w * penalised).contiguous()
        return value

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return w
