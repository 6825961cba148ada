"""Linear probes on frozen embeddings: softmax regression, full batch. A few hundred labels
train in a blink, which makes them the tool for measuring features (the low-budget study) and
for out-of-sample scores of every label (review)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

PROBE_STEPS = 200


def fit_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    generator: torch.Generator,
    members: int = 1,
    steps: int = PROBE_STEPS,
) -> torch.Tensor:
    """K probes, each on its own bootstrap weights when K > 1: (N, E) -> (K, E + 1, C)."""
    n, e = x.shape
    xb = torch.cat([x, torch.ones(n, 1, device=x.device)], 1)
    w = torch.zeros(members, e + 1, classes, device=x.device, requires_grad=True)
    weights = torch.ones(1, n, device=x.device)
    if members > 1:
        weights = torch.poisson(torch.ones(members, n, device=x.device), generator=generator)
    optimizer = torch.optim.Adam([w], lr=0.05)
    with torch.enable_grad():
        for _ in range(steps):
            logits = torch.einsum("ne,kec->knc", xb, w)
            loss = F.cross_entropy(
                logits.reshape(-1, classes), y.repeat(members), reduction="none"
            ).view(members, n)
            loss = (loss * weights).sum() / weights.sum().clamp_min(1) + 1e-3 * w.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return w.detach()


def probe_probs(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(K, E + 1, C), (N, E) -> (K, N, C) class probabilities."""
    xb = torch.cat([x, torch.ones(x.shape[0], 1, device=x.device)], 1)
    return torch.einsum("ne,kec->knc", xb, w).softmax(-1)
