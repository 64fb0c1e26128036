"""A third-party plugin: one new primitive for the built-in conv1d family and a whole new family."""

from torch import nn

from darts import Family, Primitive, hookimpl


class Swish(nn.Module):
    def forward(self, x):
        return x * x.sigmoid()


@hookimpl
def darts_add_families():
    return [Family("tiny_vectors", ("swish",), description="a family defined by a third-party plugin")]


@hookimpl
def darts_add_primitives():
    return [
        Primitive("conv1d", "tiny_swish", lambda channels, stride: nn.Sequential(Swish(), nn.AvgPool1d(1, stride)),
                  description="swish, then subsampling"),
        Primitive("tiny_vectors", "swish", lambda channels, stride: Swish(), description="swish"),
    ]
