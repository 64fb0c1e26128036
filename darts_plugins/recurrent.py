"""The ``recurrent`` family: the activations of DARTS' recurrent cell (paper section 3.1.2).

Each intermediate node of a recurrent cell computes a gate ``c`` and a candidate ``h`` from one earlier
state ``s`` and returns ``s + c * (act(h) - s)``; the primitives here are the possible ``act``.
"""

from __future__ import annotations

from torch import nn

from darts.family import Family, Primitive
from darts.hookspecs import hookimpl
from darts.search_space.zero import Zero

RECURRENT = Family("recurrent", ("none", "tanh", "relu", "sigmoid", "identity"), cell="recurrent",
                   description="activations of DARTS recurrent cells")


def _activation(module: type[nn.Module]):
    def factory(channels: int, stride: int = 1) -> nn.Module:
        return module()

    return factory


def _zero(channels: int, stride: int = 1) -> nn.Module:
    return Zero(1)


@hookimpl
def darts_add_families() -> list[Family]:
    return [RECURRENT]


@hookimpl
def darts_add_primitives() -> list[Primitive]:
    return [
        Primitive("recurrent", "none", _zero, (), "zeros"),
        Primitive("recurrent", "tanh", _activation(nn.Tanh), (), "tanh"),
        Primitive("recurrent", "relu", _activation(nn.ReLU), (), "ReLU"),
        Primitive("recurrent", "sigmoid", _activation(nn.Sigmoid), (), "logistic sigmoid"),
        Primitive("recurrent", "identity", _activation(nn.Identity), (), "identity"),
    ]


@hookimpl
def darts_add_genotypes() -> dict:
    from darts_plugins.published import rnn_genotypes

    return rnn_genotypes()
