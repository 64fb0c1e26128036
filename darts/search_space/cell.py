"""Nodes and cells, for search (mixed ops on every edge) and for discrete networks (one op per chosen edge).

A cell does not know the shape of its data nor the family of its primitives: the family hands it the
preprocessing modules, and the primitives arrive already built.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Hashable, Sequence

import torch
from torch import nn

from darts.family import Family, Primitive
from darts.genotype import CellGenotype
from darts.search_space.mixed_op import MixedOp


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole examples of ``x`` with probability ``drop_prob``, scaling the kept ones by 1 / (1 - p)."""
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class Node(nn.Module):
    """A latent state: the sum of its incoming edges, each an op applied to an earlier state.

    In a discrete network in training, ``drop_prob`` > 0 applies drop path to every edge that is not an
    identity, as DARTS' evaluation networks do.
    """

    def __init__(self, edges: Sequence[nn.Module], inputs: Sequence[int]) -> None:
        super().__init__()
        if len(edges) != len(inputs):
            raise ValueError(f"a node needs one input index per edge, got {len(edges)} edges and {len(inputs)}")
        self.edges = nn.ModuleList(edges)
        self.inputs = tuple(inputs)
        self.drop_prob = 0.0

    def forward(self, states: Sequence[torch.Tensor], weights: torch.Tensor | None = None,
                share: Callable[..., torch.Tensor] | None = None) -> torch.Tensor:
        """``weights``: one row per edge (search); ``share(j, key, compute)``: ``compute()`` once per key for
        every edge reading ``states[j]`` (see :class:`MixedOp`)."""
        if weights is None:
            outs = [edge(states[j]) for j, edge in zip(self.inputs, self.edges)]
            if self.training and self.drop_prob > 0:
                outs = [out if isinstance(edge, nn.Identity) else drop_path(out, self.drop_prob)
                        for out, edge in zip(outs, self.edges)]
        else:
            outs = [edge(states[j], w, None if share is None else partial(share, j))
                    for j, edge, w in zip(self.inputs, self.edges, weights)]
        total = outs[0]
        for out in outs[1:]:
            total = total + out
        return total


class Cell(nn.Module):
    """Two inputs (the two previous cells' outputs), intermediate nodes, and the concatenation of some states."""

    def __init__(self, preprocess0: nn.Module, preprocess1: nn.Module, nodes: Sequence[Node],
                 concat: Sequence[int], channels: int, reduction: bool) -> None:
        super().__init__()
        self.preprocess0 = preprocess0
        self.preprocess1 = preprocess1
        self.nodes = nn.ModuleList(nodes)
        self.concat = tuple(concat)
        self.reduction = reduction
        self.kind = "reduce" if reduction else "normal"
        self.out_channels = channels * len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """``weights``: softmax(alpha) of this cell type, one row per edge (search only)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        cache: dict[tuple, torch.Tensor] = {}

        def share(j: int, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
            if (j, key) not in cache:  # once per state, for every mixed op reading it
                cache[(j, key)] = compute()
            return cache[(j, key)]

        offset = 0
        for node in self.nodes:
            count = len(node.inputs)
            if weights is None:
                states.append(node(states))
            else:
                states.append(node(states, weights[offset:offset + count], share))
            offset += count
        return torch.cat([states[i] for i in self.concat], dim=1)


def _preprocessing(family: Family, c_pp: int, c_p: int, c: int, reduction_prev: bool,
                   affine: bool) -> tuple[nn.Module, nn.Module]:
    first = family.reduce(c_pp, c, affine) if reduction_prev else family.preprocess(c_pp, c, affine)
    return first, family.preprocess(c_p, c, affine)


def search_cell(family: Family, primitives: Sequence[Primitive], nodes: int, multiplier: int,
                c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                affine: bool = False, partial: int = 1) -> Cell:
    """A search cell: node ``i`` mixes every primitive on an edge from each of the ``2 + i`` earlier states;
    ``partial`` = K > 1: PC-DARTS' partial channel connections (the primitives see c / K channels)."""
    if c % partial:
        raise ValueError(f"partial channels: a cell's {c} channels do not split into K={partial} parts; "
                         f"choose channels divisible by {partial}")
    built = []
    for i in range(nodes):
        strides = [2 if reduction and j < 2 else 1 for j in range(2 + i)]
        edges = [MixedOp([p.build(c // partial, stride, affine=affine) for p in primitives], partial, stride)
                 for stride in strides]
        built.append(Node(edges, range(2 + i)))
    concat = range(2 + nodes - multiplier, 2 + nodes)
    return Cell(*_preprocessing(family, c_pp, c_p, c, reduction_prev, affine), built, concat, c, reduction)


def discrete_cell(family: Family, genotype: CellGenotype, primitives: dict[str, Primitive],
                  c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> Cell:
    """A cell of a discrete network: the chosen (primitive, input) pairs of each node."""
    built = []
    for genes in genotype.nodes:
        edges = [primitives[name].build(c, 2 if reduction and j < 2 else 1, affine=True) for name, j in genes]
        built.append(Node(edges, [j for _, j in genes]))
    return Cell(*_preprocessing(family, c_pp, c_p, c, reduction_prev, True), built, genotype.concat, c,
                reduction)
