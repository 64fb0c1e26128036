"""The ``conv1d`` and ``conv2d`` families: one implementation for any number of spatial dimensions.

Primitives follow the DARTS paper (Liu et al., 2019), plus the separable and plain 7-wide convolutions of
CANDLE's P3B5. One naming scheme serves every dimension (``sep_conv_3`` is 3 wide in 1D, 3x3 in 2D); the
paper's names (``sep_conv_3x3``, ...) are accepted as aliases for ``conv2d`` so that published genotypes load.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from darts.family import Family, Primitive
from darts.hookspecs import hookimpl
from darts.kernels import applies
from darts.search_space.weighted_norm import LEAN_BATCH_NORMS
from darts.search_space.zero import Zero
from darts_plugins.depthwise import SeparableConv
from darts_plugins.pointwise import PointwiseConv, pointwise_conv
from darts_plugins.pooling import AvgPool, MaxPool

DARTS_PRIMITIVES = ("none", "max_pool_3", "avg_pool_3", "skip_connect",
                    "sep_conv_3", "sep_conv_5", "dil_conv_3", "dil_conv_5")


def layer(kind: str, ndim: int) -> type[nn.Module]:
    """``layer("Conv", 2)`` is ``nn.Conv2d``: the N-d variant of a torch layer."""
    return getattr(nn, f"{kind}{ndim}d")


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, BatchNorm: DARTS' preprocessing and its plain convolution primitive.

    The BatchNorm keeps its output for backward (:class:`LeanBatchNorm2d` and its kin, without affine
    parameters as in a search): the tensor that the cell's edges keep too. A 1-wide convolution is a
    :class:`PointwiseConv` (a matrix product for sequences)."""

    def __init__(self, ndim: int, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        pointwise = kernel == 1 and stride == 1 and padding == 0
        super().__init__(
            nn.ReLU(inplace=False),
            PointwiseConv(ndim, c_in, c_out) if pointwise
            else layer("Conv", ndim)(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            LEAN_BATCH_NORMS[ndim - 1](c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) convolution, pointwise convolution, BatchNorm.

    The two convolutions are one :class:`SeparableConv`: the same numbers, a faster gradient on CPU, and the
    depthwise output is not kept for the backward pass."""

    def __init__(self, ndim: int, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            SeparableConv(ndim, c_in, c_out, kernel, stride, padding, dilation),
            layer("BatchNorm", ndim)(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked separable convolutions, the first with the stride (DARTS' ``sep_conv``): ReLU, depthwise,
    pointwise, BatchNorm, twice.

    The second ReLU is part of the second :class:`SeparableConv` node, which keeps the ReLU's input; the first
    BatchNorm keeps its output (:class:`LeanBatchNorm2d` and its kin, when it has no affine parameters, as in
    a search). That is the same tensor: the middle of the pair keeps one tensor for backward, not two."""

    def __init__(self, ndim: int, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.Sequential(nn.ReLU(inplace=False), SeparableConv(ndim, c_in, c_in, kernel, stride, padding),
                          LEAN_BATCH_NORMS[ndim - 1](c_in, affine=affine)),
            nn.Sequential(SeparableConv(ndim, c_in, c_out, kernel, 1, padding, relu=True),
                          layer("BatchNorm", ndim)(c_out, affine=affine)),
        )


def _sub_grid(start: int, ndim: int) -> tuple[slice, ...]:
    """Every other element from ``start`` along each of ``ndim`` spatial dimensions."""
    return (slice(None), slice(None), *[slice(start, None, 2)] * ndim)


class _SubGrids(torch.autograd.Function):
    """The sub-grids of ``x`` from its first and from its second element (every other one along every spatial
    dimension) as dense copies in ``layout``. The backward pass writes both gradients into one zero tensor;
    autograd's slicing would expand each to the input's size (one zero tensor per dimension) and add them."""

    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, x, layout):
        ctx.shape, ctx.layout = x.shape, layout
        return tuple(x[_sub_grid(start, x.dim() - 2)].contiguous(memory_format=layout) for start in (0, 1))

    @staticmethod
    def backward(ctx, grad_even, grad_odd):
        grad = torch.empty(ctx.shape, dtype=grad_even.dtype, device=grad_even.device, memory_format=ctx.layout).zero_()
        for start, part in ((0, grad_even), (1, grad_odd)):
            grad[_sub_grid(start, grad.dim() - 2)] = part  # differentiable: double backward works through it
        return grad, None


class _ShiftedConvs(nn.Module):
    """FactorizedReduce's two 1-wide stride-2 convolutions, the second on the input shifted by one, their
    outputs concatenated."""

    def __init__(self, ndim: int, c_in: int, c_out: int) -> None:
        super().__init__()
        conv = layer("Conv", ndim)
        self.ndim = ndim
        self.conv_1 = conv(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = conv(c_in, c_out - c_out // 2, 1, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = (torch.channels_last if self.ndim == 2 and x.is_contiguous(memory_format=torch.channels_last)
                  else torch.contiguous_format)
        if applies(x):
            even, odd = _SubGrids.apply(x, layout)
        else:
            even, odd = (x[_sub_grid(start, self.ndim)] for start in (0, 1))
        first, second = pointwise_conv(even, self.conv_1.weight), pointwise_conv(odd, self.conv_2.weight)  # stride 1
        pads = [p for a, b in zip(reversed(first.shape[2:]), reversed(odd.shape[2:])) for p in (0, a - b)]
        return torch.cat([first, F.pad(second, pads)], dim=1)


class FactorizedReduce(nn.Sequential):
    """Halve the resolution without losing pixels: ReLU, two 1-wide stride-2 convolutions, one shifted by one,
    BatchNorm.

    Works for odd sizes too (the shifted branch is padded), so any sequence length can be reduced. Each
    branch, a 1-wide convolution, runs at stride 1 on every other element of the input (from the first, and
    from the second on, its output padded): the same numbers, and the backward pass keeps a quarter-size
    (2D) copy of the input instead of the full-size one. It also avoids PyTorch 2.13's CPU weight gradient
    of a 1-wide stride-2 channels-last convolution, which corrupts the heap for 2 to 6 input channels.
    A plain sequence of (ReLU, convolutions, BatchNorm), so that a mixed op shares its ReLU with the other
    primitives and fuses its BatchNorm with the edge weight, as for the convolutions.
    """

    def __init__(self, ndim: int, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__(OrderedDict(relu=nn.ReLU(inplace=False), convs=_ShiftedConvs(ndim, c_in, c_out),
                                     bn=layer("BatchNorm", ndim)(c_out, affine=affine)))


class GlobalAvgPool(nn.Module):
    """Average over every spatial dimension: (N, C, ...) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(dim=2)


def _pool(ndim: int, kind: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    if kind == "max":
        pool: nn.Module = MaxPool(ndim, 3, stride=stride, padding=1)
    else:
        pool = AvgPool(ndim, 3, stride=stride, padding=1)
    if affine:
        return pool
    # during search DARTS follows each pooling with a BatchNorm, so that its scale matches the convs'
    return nn.Sequential(pool, layer("BatchNorm", ndim)(channels, affine=False))


def _skip(ndim: int, channels: int, stride: int, affine: bool = True) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(ndim, channels, channels, affine)


def _sep_conv(ndim: int, kernel: int, channels: int, stride: int, affine: bool = True) -> nn.Module:
    return SepConv(ndim, channels, channels, kernel, stride, kernel // 2, affine)


def _dil_conv(ndim: int, kernel: int, channels: int, stride: int, affine: bool = True) -> nn.Module:
    return DilConv(ndim, channels, channels, kernel, stride, kernel - 1, 2, affine)


def _conv(ndim: int, kernel: int, channels: int, stride: int, affine: bool = True) -> nn.Module:
    return ReLUConvBN(ndim, channels, channels, kernel, stride, kernel // 2, affine)


def _zero(channels: int, stride: int) -> nn.Module:
    return Zero(stride)


@dataclass
class ConvFamily(Family):
    """Convolutional cells over ``spatial_dims`` dimensions: DARTS' glue, generic over dimension."""

    def stem(self, in_channels: int, out_channels: int) -> nn.Module:
        return nn.Sequential(
            layer("Conv", self.spatial_dims)(in_channels, out_channels, 3, padding=1, bias=False),
            layer("BatchNorm", self.spatial_dims)(out_channels),
        )

    def preprocess(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        return ReLUConvBN(self.spatial_dims, in_channels, out_channels, 1, 1, 0, affine)

    def reduce(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        return FactorizedReduce(self.spatial_dims, in_channels, out_channels, affine)

    def pool(self) -> nn.Module:
        return GlobalAvgPool()

    def primitives(self) -> list[Primitive]:
        """The family's primitives; for ``conv2d`` with the paper's names as aliases."""
        n = self.spatial_dims

        def paper(base: str, kernel: int) -> tuple[str, ...]:
            return (f"{base}_{kernel}x{kernel}",) if n == 2 else ()

        spec = [
            ("none", _zero, (), "zeros (no connection)"),
            ("max_pool_3", partial(_pool, n, "max"), paper("max_pool", 3), "3-wide max pooling"),
            ("avg_pool_3", partial(_pool, n, "avg"), paper("avg_pool", 3), "3-wide average pooling"),
            ("skip_connect", partial(_skip, n), (), "identity; factorised reduction at stride 2"),
            ("sep_conv_3", partial(_sep_conv, n, 3), paper("sep_conv", 3), "separable conv, 3 wide"),
            ("sep_conv_5", partial(_sep_conv, n, 5), paper("sep_conv", 5), "separable conv, 5 wide"),
            ("sep_conv_7", partial(_sep_conv, n, 7), paper("sep_conv", 7), "separable conv, 7 wide"),
            ("dil_conv_3", partial(_dil_conv, n, 3), paper("dil_conv", 3), "dilated separable conv, 3 wide"),
            ("dil_conv_5", partial(_dil_conv, n, 5), paper("dil_conv", 5), "dilated separable conv, 5 wide"),
            ("conv_3", partial(_conv, n, 3), paper("conv", 3), "ReLU-conv-BN, 3 wide (a text CNN's trigram filter)"),
            ("conv_5", partial(_conv, n, 5), paper("conv", 5), "ReLU-conv-BN, 5 wide"),
            ("conv_7", partial(_conv, n, 7), paper("conv", 7), "ReLU-conv-BN, 7 wide (CANDLE P3B5)"),
        ]
        return [Primitive(self.name, name, factory, aliases, text) for name, factory, aliases, text in spec]


CONV1D = ConvFamily("conv1d", DARTS_PRIMITIVES, description="1D convolutional cells (sequences)",
                    spatial_dims=1)
CONV2D = ConvFamily("conv2d", DARTS_PRIMITIVES, description="2D convolutional cells (images)",
                    spatial_dims=2, memory_format=torch.channels_last)


@hookimpl
def darts_add_families() -> list[Family]:
    return [CONV1D, CONV2D]


@hookimpl
def darts_add_primitives() -> list[Primitive]:
    return CONV1D.primitives() + CONV2D.primitives()


@hookimpl
def darts_add_genotypes() -> dict:
    from darts_plugins.published import cnn_genotypes

    return cnn_genotypes()
