"""DARTS recurrent cells (paper section 3.1.2) and a small token-sequence classifier built on them.

One time step: an initial state ``s0 = h + c0 * (tanh(h0) - h)`` from the input and the previous hidden
state, then intermediate nodes; node ``i`` takes an earlier state ``s``, computes a gate ``c`` and a
candidate ``h`` from ``s W_i`` and returns ``s + c * (act(h) - s)``. The new hidden state is the mean of
the concatenated states. During search every node mixes every earlier state and every activation.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from darts.family import Family, Primitive, check_primitive
from darts.genotype import CellGenotype, Genotype, load_genotype
from darts.registry import Registry
from darts.plugins import resolve_registry
from darts.search_space.network import Alphas, HeadFactory, Supernet, resolve_space

INIT_RANGE = 0.04


class RecurrentCell(nn.Module):
    """A recurrent cell; ``ops`` is per node the list of modules (search) or the chosen (module, input) pair."""

    def __init__(self, input_size: int, hidden_size: int, num_nodes: int, concat: Sequence[int],
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.concat = tuple(concat)
        self.w0 = nn.Parameter(torch.empty(input_size + hidden_size, 2 * hidden_size).uniform_(-INIT_RANGE, INIT_RANGE))
        self.ws = nn.ParameterList(
            [nn.Parameter(torch.empty(hidden_size, 2 * hidden_size).uniform_(-INIT_RANGE, INIT_RANGE))
             for _ in range(num_nodes)])
        # DARTS normalises the node states during search only, to keep the mixture's scale stable
        self.bn = nn.BatchNorm1d(hidden_size, affine=False) if batch_norm else None

    def initial_state(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gate, candidate = torch.cat([x, h], dim=-1).matmul(self.w0).chunk(2, dim=-1)
        return h + gate.sigmoid() * (candidate.tanh() - h)

    def gate_and_candidate(self, s: torch.Tensor, node: int) -> tuple[torch.Tensor, torch.Tensor]:
        gate, candidate = s.matmul(self.ws[node]).chunk(2, dim=-1)
        return gate.sigmoid(), candidate

    def node(self, i: int, states: list[torch.Tensor], weights: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, h: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """One time step: input ``x`` (batch, input_size), previous hidden ``h`` (batch, hidden_size)."""
        states = [self.initial_state(x, h)]
        offset = 0
        for i in range(len(self.ws)):
            count = i + 1
            node_weights = None if weights is None else weights[offset:offset + count]
            offset += count
            s = self.node(i, states, node_weights)
            states.append(self.bn(s) if self.bn is not None else s)
        return torch.stack([states[i] for i in self.concat]).mean(dim=0)


class RecurrentSearchCell(RecurrentCell):
    """Search cell: node ``i`` mixes every activation applied from each of the ``i + 1`` earlier states."""

    def __init__(self, input_size: int, hidden_size: int, num_nodes: int, primitives: Sequence[Primitive]) -> None:
        super().__init__(input_size, hidden_size, num_nodes, range(1, num_nodes + 1), batch_norm=True)
        self.ops = nn.ModuleList(
            nn.ModuleList(p.build(hidden_size, 1, affine=False) for p in primitives) for _ in range(num_nodes))

    def node(self, i: int, states: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        previous = torch.stack(states)                               # (i + 1, batch, hidden)
        gate, candidate = self.gate_and_candidate(previous, i)
        out = torch.zeros_like(previous[0])
        for k, op in enumerate(self.ops[i]):
            update = previous + gate * (op(candidate) - previous)    # one per earlier state
            out = out + (weights[:, k, None, None] * update).sum(dim=0)
        return out


class RecurrentDiscreteCell(RecurrentCell):
    """Discrete cell: node ``i`` applies its chosen activation to its chosen earlier state."""

    def __init__(self, input_size: int, hidden_size: int, genotype: CellGenotype,
                 primitives: dict[str, Primitive]) -> None:
        super().__init__(input_size, hidden_size, len(genotype.nodes), genotype.concat)
        for i, node in enumerate(genotype.nodes):
            if len(node) != 1:
                raise ValueError(f"recurrent node {i} has {len(node)} incoming edges; recurrent cells take one")
        self.inputs = tuple(node[0][1] for node in genotype.nodes)
        self.ops = nn.ModuleList(primitives[node[0][0]].build(hidden_size, 1) for node in genotype.nodes)

    def node(self, i: int, states: list[torch.Tensor], weights: None) -> torch.Tensor:
        s = states[self.inputs[i]]
        gate, candidate = self.gate_and_candidate(s, i)
        return s + gate * (self.ops[i](candidate) - s)


class RecurrentClassifier(nn.Module):
    """Token ids (batch, time) -> embedding -> recurrent cell over time -> last hidden state -> head."""

    def __init__(self, cell: RecurrentCell, vocab_size: int, embedding_dim: int, num_classes: int,
                 head: HeadFactory | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.cell = cell
        self.head = head(cell.hidden_size) if head is not None else nn.Linear(cell.hidden_size, num_classes)

    def cell_weights(self) -> torch.Tensor | None:
        return None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        weights = self.cell_weights()
        embedded = self.embedding(tokens)
        h = embedded.new_zeros(tokens.shape[0], self.cell.hidden_size)
        for t in range(tokens.shape[1]):
            h = self.cell(embedded[:, t], h, weights)
        return self.head(h)


class RecurrentSearchNetwork(Supernet, RecurrentClassifier):
    """Search supernet of a recurrent family (the DARTS RNN space) for sequence classification."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_classes: int,
                 nodes: int = 8, family: str | Family = "recurrent", primitives: Sequence[str] | None = None,
                 head: HeadFactory | None = None, registry: Registry | None = None) -> None:
        fam, ops = resolve_space(family, primitives, "recurrent", registry)
        for primitive in ops:
            check_primitive(fam, primitive, hidden_size, 1, affine=False)
        cell = RecurrentSearchCell(embedding_dim, hidden_size, nodes, ops)
        super().__init__(cell, vocab_size, embedding_dim, num_classes, head)
        self.family = fam
        self.primitive_names = tuple(p.name for p in ops)
        self.cell_concat = {"recurrent": cell.concat}
        self.alphas = Alphas({"recurrent": (sum(range(1, nodes + 1)), len(ops))})

    def cell_weights(self) -> torch.Tensor:
        return self.arch_weights()["recurrent"]


class RecurrentNetwork(RecurrentClassifier):
    """A discrete recurrent classifier built from a genotype (e.g. ``DARTS_RNN_V2``)."""

    def __init__(self, genotype: Genotype | str, vocab_size: int, embedding_dim: int, hidden_size: int,
                 num_classes: int, head: HeadFactory | None = None, registry: Registry | None = None) -> None:
        registry = resolve_registry(registry)
        genotype = load_genotype(genotype, registry)
        fam = registry.family(genotype.family)
        if fam.cell != "recurrent":
            raise ValueError(f"genotype of family {fam.name!r} has {fam.cell} cells; use Network")
        cell_genotype = genotype.cells["recurrent"]
        used = {name: registry.primitive(fam.name, name) for name, _ in cell_genotype.genes}
        super().__init__(RecurrentDiscreteCell(embedding_dim, hidden_size, cell_genotype, used),
                         vocab_size, embedding_dim, num_classes, head)
        self.genotype = genotype
