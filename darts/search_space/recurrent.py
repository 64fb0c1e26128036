"""DARTS recurrent cells (paper section 3.1.2) and a small token-sequence classifier built on them.

One time step: an initial state ``s0 = h + c0 * (tanh(h0) - h)`` from the input ``x`` and the previous
hidden state ``h``, then intermediate nodes; node ``i`` takes an earlier state ``s``, computes a gate ``c``
and a candidate ``h`` from ``s W_i`` and returns ``s + c * (act(h) - s)``. The new hidden state is the mean
of the concatenated states. During search every node mixes every earlier state and every activation
(``none`` adds nothing; its softmax weight still counts), and every state is batch-normalised, as DARTS does.

Dropout is variational (one mask per sequence, the same at every time step): ``dropout_input`` on ``x``,
``dropout_hidden`` on ``h`` and on the states entering each node, as in DARTS' AWD-LSTM backbone.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from darts.family import Family, Primitive, check_primitive
from darts.genotype import CellGenotype, Genotype
from darts.plugins import load_genotype
from darts.registry import Registry
from darts.plugins import resolve_registry
from darts.search_space.network import Alphas, HeadFactory, Supernet, resolve_space
from darts.search_space.zero import Zero

INIT_RANGE = 0.04


def variational_mask(like: torch.Tensor, p: float) -> torch.Tensor | None:
    """A dropout mask of ``like``'s shape, scaled by 1 / (1 - p); None when ``p`` is 0."""
    if p <= 0:
        return None
    return like.new_empty(like.shape).bernoulli_(1 - p).div_(1 - p)


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class RecurrentCell(nn.Module):
    """A recurrent cell run over a sequence; subclasses define how node ``i`` computes its state."""

    def __init__(self, input_size: int, hidden_size: int, num_nodes: int, concat: Sequence[int],
                 batch_norm: bool = False, dropout_input: float = 0.0, dropout_hidden: float = 0.0) -> None:
        super().__init__()
        for name, p in (("dropout_input", dropout_input), ("dropout_hidden", dropout_hidden)):
            if not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.concat = tuple(concat)
        self.dropout_input, self.dropout_hidden = dropout_input, dropout_hidden
        self.w0 = nn.Parameter(torch.empty(input_size + hidden_size, 2 * hidden_size).uniform_(-INIT_RANGE, INIT_RANGE))
        self.ws = nn.ParameterList(
            [nn.Parameter(torch.empty(hidden_size, 2 * hidden_size).uniform_(-INIT_RANGE, INIT_RANGE))
             for _ in range(num_nodes)])
        # DARTS normalises the node states during search only, to keep the mixture's scale stable
        self.bn = nn.BatchNorm1d(hidden_size, affine=False) if batch_norm else None

    def _norm(self, s: torch.Tensor) -> torch.Tensor:
        return self.bn(s) if self.bn is not None else s

    def node(self, i: int, states: list[torch.Tensor], h_mask: torch.Tensor | None,
             weights: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def step(self, x_part: torch.Tensor, h: torch.Tensor, h_mask: torch.Tensor | None,
             weights: torch.Tensor | None) -> torch.Tensor:
        """One time step from ``x_part`` (the input's share of ``[x, h] W0``, precomputed) and ``h``."""
        gate, candidate = (x_part + _masked(h, h_mask).matmul(self.w0[self.input_size:])).chunk(2, dim=-1)
        states = [self._norm(h + gate.sigmoid() * (candidate.tanh() - h))]
        offset = 0
        for i in range(len(self.ws)):
            node_weights = None if weights is None else weights[offset:offset + i + 1]
            offset += i + 1
            states.append(self._norm(self.node(i, states, h_mask, node_weights)))
        return torch.stack([states[i] for i in self.concat]).mean(dim=0)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor | None = None, weights: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run over ``inputs`` (batch, time, input_size) from ``h`` (batch, hidden; zeros if None).

        ``mask`` (batch, time), if given, marks the real steps: at the others (padding) the hidden state
        stays as it was. Returns every time step's hidden state (batch, time, hidden) and the last one."""
        batch, length, _ = inputs.shape
        if h is None:
            h = inputs.new_zeros(batch, self.hidden_size)
        x_mask = h_mask = None
        if self.training:
            x_mask = variational_mask(inputs[:, 0], self.dropout_input)
            h_mask = variational_mask(h, self.dropout_hidden)
        if x_mask is not None:
            inputs = inputs * x_mask.unsqueeze(1)
        # the input's part of the initial state's linear map, for every time step at once
        x_parts = inputs.matmul(self.w0[:self.input_size])
        outputs = []
        for t in range(length):
            new = self.step(x_parts[:, t], h, h_mask, weights)
            h = new if mask is None else torch.where(mask[:, t, None], new, h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class RecurrentSearchCell(RecurrentCell):
    """Search cell: node ``i`` mixes every activation applied from each of the ``i + 1`` earlier states."""

    def __init__(self, input_size: int, hidden_size: int, num_nodes: int, primitives: Sequence[Primitive],
                 dropout_input: float = 0.0, dropout_hidden: float = 0.0, batch_norm: bool = True) -> None:
        super().__init__(input_size, hidden_size, num_nodes, range(1, num_nodes + 1), batch_norm=batch_norm,
                         dropout_input=dropout_input, dropout_hidden=dropout_hidden)
        self.primitive_names = tuple(p.name for p in primitives)
        self.ops = nn.ModuleList(
            nn.ModuleList(p.build(hidden_size, 1, affine=False) for p in primitives) for _ in range(num_nodes))
        # 'none' contributes nothing to a node (DARTS skips it); its weight still counts in the softmax
        self._active = [k for k, op in enumerate(self.ops[0]) if not isinstance(op, Zero)]

    def node(self, i: int, states: list[torch.Tensor], h_mask: torch.Tensor | None,
             weights: torch.Tensor) -> torch.Tensor:
        previous = torch.stack(states)                               # (i + 1, batch, hidden)
        gate, candidate = _masked(previous, h_mask).matmul(self.ws[i]).chunk(2, dim=-1)
        gate = gate.sigmoid()
        out = torch.zeros_like(previous[0])
        for k in self._active:
            update = previous + gate * (self.ops[i][k](candidate) - previous)    # one per earlier state
            out = out + (weights[:, k, None, None] * update).sum(dim=0)
        return out


class RecurrentDiscreteCell(RecurrentCell):
    """Discrete cell: node ``i`` applies its chosen activation to its chosen earlier state."""

    def __init__(self, input_size: int, hidden_size: int, genotype: CellGenotype,
                 primitives: dict[str, Primitive], dropout_input: float = 0.0, dropout_hidden: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, len(genotype.nodes), genotype.concat,
                         dropout_input=dropout_input, dropout_hidden=dropout_hidden)
        for i, node in enumerate(genotype.nodes):
            if len(node) != 1:
                raise ValueError(f"recurrent node {i} has {len(node)} incoming edges; recurrent cells take one")
        self.inputs = tuple(node[0][1] for node in genotype.nodes)
        self.ops = nn.ModuleList(primitives[node[0][0]].build(hidden_size, 1) for node in genotype.nodes)

    def node(self, i: int, states: list[torch.Tensor], h_mask: torch.Tensor | None, weights: None) -> torch.Tensor:
        s = states[self.inputs[i]]
        gate, candidate = _masked(s, h_mask).matmul(self.ws[i]).chunk(2, dim=-1)
        return s + gate.sigmoid() * (self.ops[i](candidate) - s)


def search_cell(input_size: int, hidden_size: int, nodes: int, family: str | Family,
                primitives: Sequence[str] | None, registry: Registry | None,
                dropout_input: float = 0.0, dropout_hidden: float = 0.0,
                batch_norm: bool = True) -> tuple[Family, RecurrentSearchCell]:
    """The family and a search cell over its (checked) primitives."""
    fam, ops = resolve_space(family, primitives, "recurrent", registry)
    for primitive in ops:
        check_primitive(fam, primitive, hidden_size, 1, affine=False)
    return fam, RecurrentSearchCell(input_size, hidden_size, nodes, ops, dropout_input, dropout_hidden, batch_norm)


def discrete_cell(genotype: Genotype | str, input_size: int, hidden_size: int, registry: Registry | None,
                  dropout_input: float = 0.0, dropout_hidden: float = 0.0) -> tuple[Genotype, RecurrentDiscreteCell]:
    """The (loaded, checked) genotype and the discrete cell it describes."""
    registry = resolve_registry(registry)
    genotype = load_genotype(genotype, registry)
    fam = registry.family(genotype.family)
    if fam.cell != "recurrent":
        raise ValueError(f"genotype of family {fam.name!r} has {fam.cell} cells; use Network")
    cell_genotype = genotype.cells["recurrent"]
    used = {name: registry.primitive(fam.name, name) for name, _ in cell_genotype.genes}
    return genotype, RecurrentDiscreteCell(input_size, hidden_size, cell_genotype, used, dropout_input,
                                           dropout_hidden)


class RecurrentSupernet(Supernet):
    """What the recurrent search networks share: one alpha row per (node, earlier state) pair."""

    cell: RecurrentSearchCell

    def _init_alphas(self, family: Family, nodes: int) -> None:
        self.family = family
        self.primitive_names = self.cell.primitive_names
        self.cell_concat = {"recurrent": self.cell.concat}
        self.alphas = Alphas({"recurrent": (sum(range(1, nodes + 1)), len(self.primitive_names))})

    def cell_weights(self) -> torch.Tensor:
        return self.arch_weights()["recurrent"]


POOLS = ("last", "max", "avg")


class RecurrentClassifier(nn.Module):
    """Token ids (batch, time) -> embedding -> recurrent cell over time -> features -> head.

    Token 0 is padding: the hidden state does not change there. The features are the ``last`` hidden
    state (at the last real token), or the ``max`` or ``avg`` of the hidden states over the real tokens."""

    def __init__(self, cell: RecurrentCell, vocab_size: int, embedding_dim: int, num_classes: int,
                 head: HeadFactory | None = None, pool: str = "last") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.cell = cell
        self.pool = pool
        self.head = head(cell.hidden_size) if head is not None else nn.Linear(cell.hidden_size, num_classes)

    def cell_weights(self) -> torch.Tensor | None:
        return None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        real = tokens != 0
        states, last = self.cell(self.embedding(tokens), None, self.cell_weights(), real)
        if self.pool == "last":
            features = last
        elif self.pool == "max":  # padding repeats an earlier state, so it never changes the maximum
            features = states.amax(1)
        else:
            weights = real.unsqueeze(-1).to(states.dtype)
            features = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.head(features)


class RecurrentSearchNetwork(RecurrentSupernet, RecurrentClassifier):
    """Search supernet of a recurrent family (the DARTS RNN space) for sequence classification.

    Unlike DARTS' language-model search, its states are not batch-normalised by default: over long padded
    documents the states of a batch become nearly equal, and normalising them made the gradients overflow."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_classes: int,
                 nodes: int = 8, family: str | Family = "recurrent", primitives: Sequence[str] | None = None,
                 head: HeadFactory | None = None, registry: Registry | None = None, pool: str = "last",
                 batch_norm: bool = False) -> None:
        fam, cell = search_cell(embedding_dim, hidden_size, nodes, family, primitives, registry,
                                batch_norm=batch_norm)
        super().__init__(cell, vocab_size, embedding_dim, num_classes, head, pool)
        self._init_alphas(fam, nodes)


class RecurrentNetwork(RecurrentClassifier):
    """A discrete recurrent classifier built from a genotype (e.g. ``DARTS_RNN_V2``)."""

    def __init__(self, genotype: Genotype | str, vocab_size: int, embedding_dim: int, hidden_size: int,
                 num_classes: int, head: HeadFactory | None = None, registry: Registry | None = None,
                 pool: str = "last") -> None:
        genotype, cell = discrete_cell(genotype, embedding_dim, hidden_size, registry)
        super().__init__(cell, vocab_size, embedding_dim, num_classes, head, pool)
        self.genotype = genotype
