"""The ``linear`` family: fully connected primitives for feature vectors of shape (batch, features).

There is no resolution to reduce, so ``stride`` does not change the shape; a reduction cell of a
``linear`` network only doubles the width, as its channel schedule says.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from darts.family import Family, Primitive
from darts.hookspecs import hookimpl
from darts.search_space.zero import Zero


def linear_block(c_in: int, c_out: int, affine: bool = True, dropout: float = 0.0) -> nn.Sequential:
    """ReLU, (dropout,) linear map, BatchNorm: the fully connected analogue of ReLU-conv-BN."""
    layers: list[nn.Module] = [nn.ReLU(inplace=False)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(c_in, c_out, bias=False), nn.BatchNorm1d(c_out, affine=affine)]
    return nn.Sequential(*layers)


def _zero(channels: int, stride: int) -> nn.Module:
    return Zero(stride)


def _skip(channels: int, stride: int) -> nn.Module:
    return nn.Identity()


def _linear(channels: int, stride: int, affine: bool = True) -> nn.Module:
    return linear_block(channels, channels, affine)


def _bottleneck(channels: int, stride: int, affine: bool = True) -> nn.Module:
    hidden = max(1, channels // 4)
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Linear(channels, hidden, bias=False),
        nn.ReLU(inplace=False),
        nn.Linear(hidden, channels, bias=False),
        nn.BatchNorm1d(channels, affine=affine),
    )


def _dropout(channels: int, stride: int, affine: bool = True) -> nn.Module:
    return linear_block(channels, channels, affine, dropout=0.2)


@dataclass
class LinearFamily(Family):
    """Glue for fully connected cells."""

    def stem(self, in_channels: int, out_channels: int) -> nn.Module:
        return nn.Sequential(nn.Linear(in_channels, out_channels, bias=False), nn.BatchNorm1d(out_channels))

    def preprocess(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        return linear_block(in_channels, out_channels, affine)

    def reduce(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        return linear_block(in_channels, out_channels, affine)


LINEAR = LinearFamily(
    "linear", ("none", "skip_connect", "linear", "bottleneck", "linear_dropout"),
    description="fully connected cells (feature vectors)")


@hookimpl
def darts_add_families() -> list[Family]:
    return [LINEAR]


@hookimpl
def darts_add_primitives() -> list[Primitive]:
    return [
        Primitive("linear", "none", _zero, (), "zeros (no connection)"),
        Primitive("linear", "skip_connect", _skip, (), "identity"),
        Primitive("linear", "linear", _linear, ("linear_block",), "ReLU-linear-BN"),
        Primitive("linear", "bottleneck", _bottleneck, (), "ReLU-linear(C/4)-ReLU-linear(C)-BN"),
        Primitive("linear", "linear_dropout", _dropout, ("dropout",), "ReLU-dropout(0.2)-linear-BN"),
    ]
