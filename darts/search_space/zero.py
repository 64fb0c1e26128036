"""The ``none`` primitive, which the search space knows by its class: it adds nothing to an edge."""

from __future__ import annotations

import torch
from torch import nn


class Zero(nn.Module):
    """The ``none`` primitive: zeros of the output shape (spatial dimensions subsampled by ``stride``).

    A family registers its ``none`` primitive as this module, so that a mixed op (and a recurrent search cell)
    skips it: its weight counts in the softmax, its all-zero output adds nothing to the sum."""

    parameter_free = True

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 or x.dim() <= 2:
            return x.mul(0.0)
        index = (slice(None), slice(None), *[slice(None, None, self.stride)] * (x.dim() - 2))
        return x[index].mul(0.0)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"
