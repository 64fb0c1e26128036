"""The mixed op: one edge of a cell during search."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MixedOp(nn.Module):
    """The weighted sum of every primitive of the search space; every primitive is applied."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``weights``: one weight per primitive (a row of softmax(alpha))."""
        out = weights[0] * self.ops[0](x)
        for weight, op in zip(weights[1:], self.ops[1:]):
            out = out + weight * op(x)
        return out
