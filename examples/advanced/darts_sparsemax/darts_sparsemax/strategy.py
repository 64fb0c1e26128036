"""Sparsemax (Martins and Astudillo, 2016) as a darts search strategy.

sparsemax(z) is the Euclidean projection of z onto the probability simplex: max(z - tau, 0), with tau chosen
so that the weights sum to 1. Unlike softmax it gives primitives exactly zero weight once their alpha falls
far enough behind, so an edge can end with one or two primitives left instead of a long tail.
"""

from __future__ import annotations

import torch
from pydantic import Field

from darts import Strategy, StrategyOptions


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Sparsemax over the last dimension (differentiable: autograd goes through the sort and the threshold)."""
    ordered, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    cumulative = ordered.cumsum(-1)
    support = (1 + k * ordered > cumulative).to(z.dtype)  # the sorted entries that stay above the threshold
    size = support.sum(-1, keepdim=True)
    tau = ((ordered * support).sum(-1, keepdim=True) - 1) / size
    return torch.clamp(z - tau, min=0)


class Sparsemax(Strategy):
    """Mixing weights sparsemax(alpha / temperature); no penalty, no schedule, every order and family."""

    name = "sparsemax"
    description = "sparsemax(alpha / temperature) mixing weights: exact zeros (example plugin darts-sparsemax)"

    class Options(StrategyOptions):
        temperature: float = Field(0.05, gt=0, description="alpha is divided by it: smaller gives sparser weights")

    def mixing_weights(self, alpha, mode):
        return sparsemax(alpha / self.options.temperature)
