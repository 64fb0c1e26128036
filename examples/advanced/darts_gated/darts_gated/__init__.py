"""Gated and squeeze-excitation convolutions as darts primitives, for any number of spatial dimensions."""

from darts_gated.primitives import PRIMITIVES, GatedConv, SqueezeExciteConv

__all__ = ["PRIMITIVES", "GatedConv", "SqueezeExciteConv"]
