"""Families and primitives: what a plugin contributes to the search space.

A *primitive* is one candidate operation, an ``nn.Module`` made by a factory from (channels, stride).
A *family* is a named set of primitives plus the glue its cells need: the stem, the preprocessing of a
cell's inputs, the reduction of an input whose resolution halved, and the global pooling before the head.
The core never looks inside either: it only calls these methods.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Literal, Sequence

import torch
from torch import nn

PrimitiveFactory = Callable[..., nn.Module]
CellKind = Literal["feedforward", "recurrent"]


class PrimitiveBuildError(ValueError):
    """A primitive's factory raised or returned something that is not a module; the message names it."""


@dataclass(frozen=True)
class Primitive:
    """One candidate operation of a family.

    ``factory(channels, stride)`` returns the module; it may also accept ``affine=`` (False during
    search, as in DARTS, so that BatchNorm scales do not compete with the alphas).
    ``aliases`` are other accepted names (for example the paper's ``sep_conv_3x3``).
    """

    family: str
    name: str
    factory: PrimitiveFactory
    aliases: tuple[str, ...] = ()
    description: str = ""

    @cached_property
    def _accepts_affine(self) -> bool:
        try:
            parameters = inspect.signature(self.factory).parameters
        except (TypeError, ValueError):
            return False
        return "affine" in parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
        )

    def build(self, channels: int, stride: int = 1, affine: bool = True) -> nn.Module:
        """Instantiate the primitive for ``channels`` channels at ``stride``; a failing factory is named."""
        try:
            module = (self.factory(channels, stride, affine=affine) if self._accepts_affine
                      else self.factory(channels, stride))
        except Exception as error:  # noqa: BLE001 - a plugin's factory may raise anything
            raise PrimitiveBuildError(f"primitive {self.name!r} of family {self.family!r} failed to build for "
                                      f"channels={channels}, stride={stride}: {type(error).__name__}: "
                                      f"{error}") from error
        if not isinstance(module, nn.Module):
            raise PrimitiveBuildError(f"primitive {self.name!r} of family {self.family!r} returned a "
                                      f"{type(module).__name__}, not a torch.nn.Module")
        return module


@dataclass
class Family:
    """Base class of a family: its name, default primitive set and cell glue.

    Subclasses override the glue methods; the defaults suit data of shape (batch, channels).
    """

    name: str
    default_primitives: Sequence[str] = ()
    cell: CellKind = "feedforward"
    description: str = ""
    #: number of spatial dimensions after the channel dimension (0 for feature vectors)
    spatial_dims: int = 0
    #: the memory layout the family's networks run fastest in (e.g. ``torch.channels_last`` for 2D
    #: convolutions: several times faster depthwise and 1x1 convolutions on CPU); None: the default layout
    memory_format: torch.memory_format | None = None

    # --- glue used by cells and networks -------------------------------------------------
    def stem(self, in_channels: int, out_channels: int) -> nn.Module:
        """Map the network input to ``out_channels`` channels."""
        raise NotImplementedError(f"family {self.name!r} defines no stem")

    def preprocess(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        """Bring a cell input to the cell's channel count at the same resolution."""
        raise NotImplementedError(f"family {self.name!r} defines no preprocessing")

    def reduce(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        """Like :meth:`preprocess`, halving the resolution (for the input two cells back)."""
        raise NotImplementedError(f"family {self.name!r} defines no reduction")

    def pool(self) -> nn.Module:
        """Global pooling from a cell output to (batch, channels)."""
        return nn.Flatten(1)

    # --- shapes, for checks and tests -----------------------------------------------------
    def output_shape(self, input_shape: Sequence[int], stride: int) -> tuple[int, ...]:
        """Shape a primitive must return for ``input_shape`` at ``stride``."""
        batch, channels, *spatial = input_shape
        return (batch, channels, *[(size + stride - 1) // stride for size in spatial])

    def example_input(self, batch: int, channels: int, size: int = 8,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A random input of this family's data shape."""
        return torch.randn(batch, channels, *([size] * self.spatial_dims), dtype=dtype)


def check_primitive(family: Family, primitive: Primitive, channels: int, stride: int,
                    affine: bool = True) -> nn.Module:
    """Build ``primitive`` and check on a probe input that it returns the family's output shape.

    Raises ``ValueError`` naming the primitive and both shapes, so that a faulty user primitive
    fails when the search space is built rather than deep inside training.
    """
    module = primitive.build(channels, stride, affine=affine)
    probe = family.example_input(2, channels, size=7)
    expected = family.output_shape(probe.shape, stride)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as error:  # noqa: BLE001 - re-raised with the primitive's name
        raise ValueError(
            f"primitive {family.name}/{primitive.name} failed on an input of shape "
            f"{tuple(probe.shape)} at stride {stride}: {type(error).__name__}: {error}"
        ) from error
    finally:
        module.train(was_training)
    if tuple(out.shape) != tuple(expected):
        raise ValueError(
            f"primitive {family.name}/{primitive.name} at stride {stride} with {channels} channels "
            f"returned shape {tuple(out.shape)} for input {tuple(probe.shape)}; expected {tuple(expected)}"
        )
    return module
