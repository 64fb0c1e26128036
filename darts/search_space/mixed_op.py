"""The mixed op: one edge of a cell during search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from darts.search_space.weighted_norm import fusable, weighted_batch_norm


def _layers(op: nn.Module) -> list[nn.Module]:
    """``op`` as the flat list of modules it applies in turn, when it is a (nested) plain ``nn.Sequential``."""
    if isinstance(op, nn.Sequential) and type(op).forward is nn.Sequential.forward:
        return [leaf for child in op for leaf in _layers(child)]
    return [op]


@dataclass
class _Parts:
    """A primitive as (its leading ReLU, the body, its trailing affine-free BatchNorm); the modules are shared."""

    relu: bool
    body: nn.Module | None
    norm: nn.Module | None


def _split(op: nn.Module) -> _Parts:
    layers = _layers(op)
    relu = isinstance(layers[0], nn.ReLU)
    layers = layers[1:] if relu else layers
    norm = layers.pop() if layers and fusable(layers[-1]) else None
    body = None if not layers else layers[0] if len(layers) == 1 else nn.Sequential(*layers)
    return _Parts(relu, body, norm)


class MixedOp(nn.Module):
    """The weighted sum of every primitive of the search space.

    Exactly that sum, computed with less work and memory: a ``none`` primitive (all zeros) adds nothing, so
    it is skipped (its weight still counts in the softmax); the ReLU that several primitives start with is
    applied to the edge input once and shared (a cell shares it between the edges leaving one state too);
    and a primitive's trailing BatchNorm and its weight are one autograd node that keeps only the normalised
    output (:mod:`darts.search_space.weighted_norm`).
    """

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        from darts_plugins.common import Zero

        self._zero = [isinstance(op, Zero) for op in ops]
        # a plain list, so that the shared modules are not registered twice
        self._parts = [_split(op) for op in ops]

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                relu: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """``weights``: one weight per primitive (a row of softmax(alpha)); ``relu``: gives ``relu(x)``."""
        activated = None
        out = None
        for index, (weight, op) in enumerate(zip(weights, self.ops)):
            if self._zero[index]:
                continue
            parts = self._parts[index]
            y = x
            if parts.relu:
                if activated is None:
                    activated = relu() if relu is not None else torch.relu(x)
                y = activated
            if parts.body is not None:
                y = parts.body(y)
            if parts.norm is None:
                y = weight * y
            elif parts.norm.training:
                y = weighted_batch_norm(y, weight, parts.norm)
            else:
                y = weight * parts.norm(y)
            out = y if out is None else out + y
        if out is None:  # every primitive is 'none'
            out = weights[0] * self.ops[0](x)
        return out
