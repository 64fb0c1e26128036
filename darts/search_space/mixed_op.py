"""The mixed op: one edge of a cell during search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from darts.search_space.weighted_norm import fusable, normalize, track_running_stats, weighted_batch_norm
from darts.search_space.zero import Zero

#: ``share(key, compute)``: ``compute()``, computed once per key for every mixed op reading the same input
Share = Callable[[Hashable, Callable[[], torch.Tensor]], torch.Tensor]

#: modules whose output depends on their input alone (no parameters, buffers or randomness): primitives made
#: of them give the same output on every edge that reads the same state. A plugin's module class says the same
#: of itself with a class attribute ``parameter_free = True`` (as the built-in poolings do).
PURE = (nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


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


def _pure(module: nn.Module) -> bool:
    return all((isinstance(m, PURE + (nn.Sequential,)) or getattr(type(m), "parameter_free", False) is True)
               and not list(m.parameters(recurse=False)) for m in module.modules())


def _share_key(parts: _Parts) -> Hashable | None:
    """What identifies a parameter-free primitive's output given its input (None: not shareable)."""
    if parts.body is None or not _pure(parts.body):
        return None
    norm = None if parts.norm is None else (type(parts.norm), parts.norm.eps, parts.norm.momentum)
    return parts.relu, repr(parts.body), norm


class MixedOp(nn.Module):
    """The weighted sum of every primitive of the search space.

    Exactly that sum, computed with less work and memory: a ``none`` primitive (all zeros) adds nothing, so
    it is skipped (its weight still counts in the softmax); the ReLU that several primitives start with is
    applied to the edge input once and shared (a cell shares it between the edges leaving one state too);
    and a primitive's trailing BatchNorm, its weight and the sum are one autograd node that keeps only the
    normalised output (:mod:`darts.search_space.weighted_norm`).

    ``partial`` = K > 1 is PC-DARTS' partial channel connection (Xu et al., 2020): the primitives (built for
    channels / K) see the first 1/K of the channels; the other channels bypass them (max pooled at a
    ``stride`` above 1) and are scaled by the sum of the weights (1, or the edge's weight under edge
    normalisation); the two parts are interleaved by a channel shuffle of K groups.

    A cell passes ``share``, so that what does not depend on the edge is computed once per state: the ReLU,
    and the (normalised) output of a parameter-free primitive such as a pooling. A shared BatchNorm still
    updates every edge's running statistics, with the same batch statistics.
    """

    def __init__(self, ops: Sequence[nn.Module], partial: int = 1, stride: int = 1) -> None:
        super().__init__()
        if partial < 1:
            raise ValueError(f"partial (PC-DARTS' K) must be at least 1, got {partial}")
        self.ops = nn.ModuleList(ops)
        self.partial, self.stride = partial, stride
        self._zero = [isinstance(op, Zero) for op in ops]
        # a plain list, so that the shared modules are not registered twice
        self._parts = [_split(op) for op in ops]
        self._share_keys = [_share_key(parts) for parts in self._parts]

    def forward(self, x: torch.Tensor, weights: torch.Tensor, share: Share | None = None) -> torch.Tensor:
        """``weights``: one weight per primitive (a row of softmax(alpha)); ``share``: see the class."""
        share = share if share is not None else _unshared()
        if self.partial == 1:
            return self._mix(x, weights, share)
        channels = x.shape[1]
        if channels % self.partial:
            raise ValueError(f"partial channels: {channels} channels do not split into K={self.partial} parts")
        last = channels_last(x)

        def first_part() -> torch.Tensor:
            part = x[:, :channels // self.partial]
            return part.contiguous(memory_format=_FORMATS[x.dim()]) if last else part.contiguous()

        def bypass() -> torch.Tensor:
            rest = x[:, channels // self.partial:]
            if self.stride > 1 and x.dim() > 2:
                pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3]
                rest = pool(rest, self.stride, self.stride, ceil_mode=True)
            return rest

        part = share(("partial", self.partial), first_part)
        rest = share(("bypass", self.partial, self.stride), bypass)
        mixed = self._mix(part, weights, lambda key, compute: share(("partial", self.partial, key), compute))
        return channel_shuffle(mixed, weights.sum() * rest, self.partial, last)

    def _mix(self, x: torch.Tensor, weights: torch.Tensor, share: Share) -> torch.Tensor:
        """The weighted sum of the primitives on ``x``."""
        out = None
        for index, (weight, op) in enumerate(zip(weights, self.ops)):
            if self._zero[index]:
                continue
            parts = self._parts[index]
            y = share("relu", lambda: torch.relu(x)) if parts.relu else x
            if self._share_keys[index] is not None:
                y = self._shared_output(parts, self._share_keys[index], y, share)
            else:
                if parts.body is not None:
                    y = parts.body(y)
                if parts.norm is not None and parts.norm.training:  # the sum so far and this term in one pass
                    out = weighted_batch_norm(y, weight, parts.norm, before=out)
                    continue
                if parts.norm is not None:
                    y = parts.norm(y)
            out = weight * y if out is None else torch.addcmul(out, weight, y)  # one op for the term and sum
        if out is None:  # every primitive is 'none'
            out = weights[0] * self.ops[0](x)
        return out

    @staticmethod
    def _shared_output(parts: _Parts, key: Hashable, y: torch.Tensor, share: Share) -> torch.Tensor:
        """A parameter-free primitive's (normalised) output, computed by the first edge that needs it."""
        body = share(("body", key), lambda: parts.body(y))
        if parts.norm is None:
            return body
        if not parts.norm.training:  # this edge's own running statistics
            return parts.norm(body)
        computed = []

        def first_edge() -> torch.Tensor:
            computed.append(True)
            return normalize(body, parts.norm)

        normalised = share(("norm", key), first_edge)
        if not computed:  # as if this edge had normalised the batch itself
            track_running_stats(parts.norm, body)
        return normalised


def _unshared() -> Share:
    """A ``share`` for one mixed op alone (its primitives still share the ReLU)."""
    cache: dict[Hashable, torch.Tensor] = {}

    def share(key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    return share


_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


def channels_last(t: torch.Tensor) -> bool:
    """Whether ``t`` (batch, channels, 2 or 3 spatial dims) is laid out channels-last in memory."""
    return t.dim() in _FORMATS and t.is_contiguous(memory_format=_FORMATS[t.dim()]) and not t.is_contiguous()


def channel_shuffle(part: torch.Tensor, rest: torch.Tensor, groups: int, last: bool = False) -> torch.Tensor:
    """``cat([part, rest], 1)`` shuffled in ``groups`` groups (ShuffleNet): channel ``g * c + i`` of the
    concatenation (c = part's channels) becomes channel ``i * groups + g``. One copy; with ``last`` the
    result is channels-last."""
    c = part.shape[1]
    if last:  # the channels innermost: stack along a new last dimension
        pieces = [part.movedim(1, -1), *rest.movedim(1, -1).unflatten(-1, (groups - 1, c)).unbind(-2)]
        return torch.stack(pieces, dim=-1).flatten(-2).movedim(-1, 1)
    pieces = [part, *rest.unflatten(1, (groups - 1, c)).unbind(1)]
    return torch.stack(pieces, dim=2).flatten(1, 2)
