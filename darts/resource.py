"""Resource-aware search: the expected cost of the network a search would derive, as a penalty on the alphas.

Each primitive of each edge is measured once, built as the discrete network builds it, on the input the edge
sees in the supernet (its parameters, or the multiply-adds of one example through it); the fixed parts of the
network (stem, preprocessing, head) are what a discrete network measures beyond its chosen primitives. Under the current mixing weights a node keeps ``k`` of its edges and an edge keeps a
primitive other than ``none`` in proportion to its weight, so the expected cost of the derived network is

    fixed + sum over nodes  k / (edges into the node)  * sum over its edges  sum_i  w_i c_i / sum_{i != none} w_i

(``none`` costs nothing and is never derived). With ``search.resource: {measure, target, weight}`` the alphas'
loss adds ``weight * max(0, expected / target - 1)``: no pressure under the target, a pull towards it above.
ProxylessNAS and NNI's profiler penalties add expected latency or size the same way, per edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Mapping

import torch
from torch import nn

from darts.genotype import NONE, Genotype
from darts.search_space.mixed_op import MixedOp

Measure = Literal["parameters", "madds"]


@dataclass
class CostModel:
    """Per cell type, the cost of each (edge, primitive) summed over the cells of that type; the fixed cost;
    the node spans of a cell's edges; the edges each node keeps; the ``none`` column (or None)."""

    measure: str
    edge_costs: dict[str, torch.Tensor]
    fixed: float
    spans: list[range]
    keep: int
    none: int | None

    def expected(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The expected cost of the derived network under ``weights`` (differentiable in them)."""
        total = torch.tensor(float(self.fixed), dtype=torch.float64)
        for name, w in weights.items():
            costs, w = self.edge_costs[name], w.to(torch.float64)
            if self.none is not None:
                w = w.clone()
                w[:, self.none] = 0
            per_edge = (w * costs.to(w.device)).sum(-1) / w.sum(-1).clamp_min(1e-12)
            for span in self.spans:
                total = total + self.keep / len(span) * per_edge[span.start:span.stop].sum().cpu()
        return total


def cost_model(network: nn.Module, example: torch.Tensor, measure: Measure,
               discrete_cost: Callable[[Genotype], float]) -> CostModel:
    """Measure every primitive of every edge of a feedforward search network, as the discrete network builds it
    (full channels, affine BatchNorm) on the input the edge sees for ``example``; ``discrete_cost(genotype)``
    measures a whole discrete network, which gives the fixed parts."""
    from darts.plugins import get_registry
    from darts.selection import node_edges

    if not hasattr(network, "cell_weights"):
        raise ValueError("search.resource needs a feedforward supernet (convolutional or linear cells); recurrent "
                         "cells have no per-edge costs here: remove search.resource")
    inputs: dict[int, torch.Tensor] = {}

    def record(module: nn.Module, args: tuple) -> None:
        inputs.setdefault(id(module), args[0])

    hooks = [mixed.register_forward_pre_hook(record) for mixed in network.modules() if isinstance(mixed, MixedOp)]
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            network(example[:1])
    finally:
        network.train(was_training)
        for hook in hooks:
            hook.remove()
    names = list(network.primitive_names)
    primitives = get_registry().resolve(network.family.name, names)
    edge_costs = {name: torch.zeros(alpha.shape, dtype=torch.float64) for name, alpha in network.alphas.items()}
    for cell, alpha_name in zip(network.cells, _alpha_names(network)):
        for e, mixed in enumerate(edge for node in cell.nodes for edge in node.edges):
            x = inputs[id(mixed)]
            for i, primitive in enumerate(primitives):
                edge_costs[alpha_name][e, i] += _cost(primitive.build(x.shape[1], mixed.stride, affine=True), x,
                                                      measure)
    edges = next(iter(network.alphas.values())).shape[0]
    spans = node_edges(edges, 2)
    genotype = network.genotype()
    chosen = sum(float(edge_costs[name][spans[n].start + source, names.index(op)])
                 for name, cell in genotype.cells.items() if name in edge_costs
                 for n, node in enumerate(cell.nodes) for op, source in node)
    return CostModel(measure, edge_costs, discrete_cost(genotype) - chosen, spans, 2,
                     names.index(NONE) if NONE in names else None)


def _alpha_names(network) -> list[str]:
    if network.alpha_sharing == "per_cell":
        return [f"cell_{i}" for i in range(len(network.cells))]
    return [cell.kind for cell in network.cells]


def _cost(module: nn.Module, x: torch.Tensor, measure: Measure) -> float:
    from darts.assemble import multiply_adds

    if measure == "parameters":
        return float(sum(p.numel() for p in module.parameters()))
    return float(multiply_adds(module, x))


class ResourcePenalty:
    """``weight * max(0, expected / target - 1)`` of a :class:`CostModel`, added to the alphas' loss."""

    def __init__(self, model: CostModel, target: float, weight: float) -> None:
        self.model, self.target, self.weight = model, target, weight

    def __call__(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        expected = self.model.expected(weights)
        return (self.weight * torch.relu(expected / self.target - 1)).to(torch.float32)
