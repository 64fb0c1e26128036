"""The mixed op: one edge of a cell during search."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _after_leading_relu(op: nn.Module) -> nn.Module | None:
    """The rest of ``op`` when it starts with a ReLU (ReLU-conv-BN, dilated and separable convolutions)."""
    if not isinstance(op, nn.Sequential) or len(op) == 0:
        return None
    children = list(op.children())
    if isinstance(children[0], nn.ReLU):
        return nn.Sequential(*children[1:])
    inner = _after_leading_relu(children[0])
    return nn.Sequential(inner, *children[1:]) if inner is not None else None


class MixedOp(nn.Module):
    """The weighted sum of every primitive of the search space.

    Exactly that sum, computed with less work: a ``none`` primitive (all zeros) adds nothing, so it is
    skipped (its weight still counts in the softmax), and the ReLU that several primitives start with is
    applied to the edge input once and shared.
    """

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        from darts_plugins.common import Zero

        self._zero = [isinstance(op, Zero) for op in ops]
        # the remainders share the ops' modules (no new parameters); a plain list, so not registered twice
        self._rest = [_after_leading_relu(op) for op in ops]

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``weights``: one weight per primitive (a row of softmax(alpha))."""
        relu = None
        out = None
        for index, (weight, op) in enumerate(zip(weights, self.ops)):
            if self._zero[index]:
                continue
            rest = self._rest[index]
            if rest is not None:
                relu = torch.relu(x) if relu is None else relu
                y = rest(relu)
            else:
                y = op(x)
            out = weight * y if out is None else out + weight * y
        if out is None:  # every primitive is 'none'
            out = weights[0] * self.ops[0](x)
        return out
