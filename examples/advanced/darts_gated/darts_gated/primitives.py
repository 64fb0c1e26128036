"""The primitives themselves: plain PyTorch modules and factories ``(channels, stride, affine)``.

Nothing here depends on how they are registered: ``plugin.py`` publishes them through the entry point,
``examples/advanced/custom_primitive.py`` registers them in-process.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class GatedConv(nn.Module):
    """tanh(conv(x)) * sigmoid(conv'(x)), then BatchNorm: a WaveNet-style gated convolution."""

    def __init__(self, dims: int, channels: int, stride: int, kernel: int = 3, affine: bool = True) -> None:
        super().__init__()
        self.conv = CONV[dims](channels, 2 * channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = NORM[dims](channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.conv(x).chunk(2, dim=1)
        return self.norm(value.tanh() * gate.sigmoid())


class SqueezeExciteConv(nn.Module):
    """ReLU, convolution, BatchNorm, then channels re-weighted by a squeeze-and-excitation gate."""

    def __init__(self, dims: int, channels: int, stride: int, kernel: int = 3, affine: bool = True) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.ReLU(), CONV[dims](channels, channels, kernel, stride=stride,
                                                        padding=kernel // 2, bias=False), NORM[dims](channels, affine=affine))
        hidden = max(1, channels // 4)
        self.excite = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        weights = self.excite(y.flatten(2).mean(-1))
        return y * weights.view(*weights.shape, *([1] * (y.dim() - 2)))


def _factory(module: type[nn.Module], dims: int, kernel: int, channels: int, stride: int, affine: bool = True):
    return module(dims, channels, stride, kernel, affine)


#: (family, name, factory, description) of every primitive this package provides
PRIMITIVES = [
    (family, name, partial(_factory, module, dims, kernel), description)
    for family, dims in (("conv1d", 1), ("conv2d", 2))
    for name, module, kernel, description in (
        ("gated_conv_3", GatedConv, 3, "gated 3-wide convolution (tanh x sigmoid)"),
        ("se_conv_3", SqueezeExciteConv, 3, "3-wide convolution with squeeze-and-excitation"),
    )
]
