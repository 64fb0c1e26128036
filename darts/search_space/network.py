"""Networks of cells: the search supernet (with its alphas) and the discrete network built from a genotype."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from darts.family import Family, Primitive, check_primitive
from darts.genotype import CELL_INPUTS, Genotype, derive_cell
from darts.plugins import load_genotype
from darts.plugins import resolve_registry
from darts.registry import Registry
from darts.search_space.cell import Cell, discrete_cell, search_cell
from darts.strategy import Mode, Strategy

StemFactory = Callable[[int], nn.Module]
HeadFactory = Callable[[int], nn.Module]
CellFactory = Callable[[bool, bool, int, int, int], Cell]


def resolve_space(family: str | Family, primitives: Sequence[str] | None, cell: str,
                  registry: Registry | None) -> tuple[Family, list[Primitive]]:
    """The family (which must have ``cell`` cells) and the primitives of a search space."""
    registry = resolve_registry(registry)
    fam = registry.family(family) if isinstance(family, str) else family
    if fam.cell != cell:
        other = "RecurrentSearchNetwork" if fam.cell == "recurrent" else "SearchNetwork"
        raise ValueError(f"family {fam.name!r} has {fam.cell} cells; use {other}")
    return fam, registry.resolve(fam.name, primitives)


class Alphas(nn.ParameterDict):
    """The architecture parameters: one (edges x primitives) matrix per cell type."""

    def __init__(self, shapes: dict[str, tuple[int, int]], init_scale: float = 1e-3) -> None:
        super().__init__({name: nn.Parameter(init_scale * torch.randn(*shape)) for name, shape in shapes.items()})


class Supernet(nn.Module):
    """Base of search networks: alphas held apart from the weights.

    ``parameters()`` and ``named_parameters()`` yield the weights only, so an optimiser built from them can
    never see an alpha; :meth:`arch_parameters` yields the alphas. Both are in ``state_dict()``.
    """

    alphas: Alphas
    family: Family
    primitive_names: tuple[str, ...]
    cell_concat: dict[str, tuple[int, ...]]
    #: mixing weights that replace softmax(alpha) in the forward pass while set (selection by perturbation
    #: masks and projects edges through them); None: the alphas decide
    fixed_weights: dict[str, torch.Tensor] | None = None
    #: how the alphas become mixing weights (:mod:`darts.strategy`); the plain softmax of the paper until
    #: :meth:`set_strategy` gives another
    strategy: Strategy = Strategy()
    #: resource-aware search: a penalty on the derived weights (:class:`darts.resource.ResourcePenalty`), or None
    resource: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None
    _alpha_pass: bool = False

    def set_strategy(self, strategy: Strategy) -> None:
        """Search with ``strategy`` (its mixing weights, penalty and schedule)."""
        self.strategy = strategy
        strategy.bind(self.primitive_names)

    @contextlib.contextmanager
    def alpha_pass(self) -> Iterator[None]:
        """Inside the block the forward passes are the architecture step's (mixing-weight mode ``alphas``)."""
        previous, self._alpha_pass = self._alpha_pass, True
        try:
            yield
        finally:
            self._alpha_pass = previous

    def mixing_mode(self) -> Mode:
        """The strategy's mode for the current forward pass: the alpha step's, a weight step's, or evaluation."""
        return "alphas" if self._alpha_pass else "weights" if self.training else "evaluate"

    def penalty(self) -> torch.Tensor | None:
        """What the strategy and a resource target add to the alphas' loss (functions of the alphas only), or
        None."""
        alphas = {name: self.alphas[name] for name in self.searched_alphas()}
        terms = [self.strategy.penalty(alphas)]
        if self.resource is not None:
            terms.append(self.resource({name: self.strategy.mixing_weights(a, "derive") for name, a in alphas.items()}))
        terms = [term for term in terms if term is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def searched_alphas(self) -> list[str]:
        """The cell types whose alphas some cell uses."""
        return [name for name in getattr(self, "searched_cell_types", self.alphas) if name in self.alphas]

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Parameter]]:
        hidden = {id(p) for p in self.arch_parameters()}
        for name, parameter in super().named_parameters(prefix, recurse, remove_duplicate):
            if id(parameter) not in hidden:
                yield name, parameter

    def arch_parameters(self) -> list[nn.Parameter]:
        """The alphas (and the edge alphas of edge normalisation), for the architecture optimiser."""
        return [p for name in ("alphas", "edge_alphas") if self._modules.get(name) is not None
                for p in self._modules[name].parameters()]

    def arch_weights(self, mode: Mode | None = None) -> dict[str, torch.Tensor]:
        """The mixing weights of every cell type, each row an edge's (or :attr:`fixed_weights`): the
        strategy's from the alphas, in ``mode`` (default: :meth:`mixing_mode`); softmax(alpha) for DARTS."""
        if self.fixed_weights is not None:
            return dict(self.fixed_weights)
        mode = mode or self.mixing_mode()
        return {name: self.strategy.mixing_weights(alpha, mode) for name, alpha in self.alphas.items()}

    def random_genotype(self, seed: int = 0, k: int | None = None) -> Genotype:
        """A genotype drawn at random from this search space: derived from random mixing weights by the
        same rule as :meth:`genotype` (every edge choice and primitive equally likely)."""
        generator = torch.Generator().manual_seed(seed)
        weights = {name: torch.rand(alpha.shape, generator=generator) for name, alpha in self.alphas.items()}
        return self._derive(weights, k)

    def genotype(self, k: int | None = None) -> Genotype:
        """Discretise: per node the ``k`` strongest edges (2 by default, 1 for recurrent cells)."""
        return self._derive(self.arch_weights("derive"), k)

    def _derive(self, weights: dict[str, torch.Tensor], k: int | None) -> Genotype:
        inputs = CELL_INPUTS[self.family.cell]
        k = k if k is not None else (1 if self.family.cell == "recurrent" else 2)
        cells = {name: derive_cell(w, self.primitive_names, inputs, k, self.cell_concat[name])
                 for name, w in weights.items()}
        return Genotype(self.family.name, self.primitive_names, cells)


#: DARTS' auxiliary head widths (its CIFAR head: 128 then 768 channels)
DARTS_AUXILIARY = (128, 768)


def scaled_auxiliary(channels: int) -> tuple[int, int]:
    """Auxiliary head widths in DARTS' proportions to the channels it reads: its CIFAR network (C=36, 20 cells)
    has 576 channels at 2/3 of the depth and widths 128 and 768, i.e. 2/9 and 4/3 of them."""
    return max(8, round(channels * 2 / 9)), max(8, round(channels * 4 / 3))


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier on the cell at 2/3 of the depth (training only; not counted in the size).

    ReLU, average pooling 5 (stride 3, or 2 for ImageNet) -- adaptive to 2 when the map is smaller --,
    1x1 conv to ``widths[0]`` (DARTS: 128), BN, ReLU, conv of width 2 to ``widths[1]`` (768), BN, ReLU, then the
    head. For families without spatial dimensions the convolutions are linear maps.
    """

    def __init__(self, family: Family, channels: int, head: HeadFactory, pool_stride: int = 3,
                 widths: tuple[int, int] = DARTS_AUXILIARY) -> None:
        super().__init__()
        dims, self.pool_stride = family.spatial_dims, pool_stride
        hidden, out = widths
        if dims:
            conv, norm = getattr(nn, f"Conv{dims}d"), getattr(nn, f"BatchNorm{dims}d")
            self.features = nn.Sequential(conv(channels, hidden, 1, bias=False), norm(hidden), nn.ReLU(),
                                          conv(hidden, out, 2, bias=False), norm(out), nn.ReLU())
        else:
            self.features = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                          nn.Linear(hidden, out, bias=False), nn.BatchNorm1d(out), nn.ReLU())
        self.head = head(out)

    def forward(self, x: torch.Tensor):
        x = F.relu(x)
        dims = x.dim() - 2
        if dims:
            if min(x.shape[2:]) >= 5:
                x = getattr(F, f"avg_pool{dims}d")(x, 5, stride=self.pool_stride, padding=0, count_include_pad=False)
            else:
                x = getattr(F, f"adaptive_avg_pool{dims}d")(x, 2)
        x = self.features(x)
        return self.head(x.flatten(2).mean(-1) if dims else x)


def imagenet_stems(family: Family, in_channels: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """DARTS' ImageNet stems: three stride-2 convolutions, the first two giving s0, the third s1."""
    if not family.spatial_dims:
        raise ValueError(f"the ImageNet stem needs a convolutional family; {family.name!r} has no spatial dims")
    conv = getattr(nn, f"Conv{family.spatial_dims}d")
    norm = getattr(nn, f"BatchNorm{family.spatial_dims}d")
    stem0 = nn.Sequential(conv(in_channels, channels // 2, 3, stride=2, padding=1, bias=False), norm(channels // 2),
                          nn.ReLU(), conv(channels // 2, channels, 3, stride=2, padding=1, bias=False), norm(channels))
    stem1 = nn.Sequential(nn.ReLU(), conv(channels, channels, 3, stride=2, padding=1, bias=False), norm(channels))
    return stem0, stem1


class CellNetwork(nn.Module):
    """Stem, a stack of cells with reductions (at 1/3 and 2/3 of the depth by default), pooling and head.

    ``stem``, ``head`` and ``pool`` replace the family's own (for an embedding stem, task heads, max pooling).
    ``auxiliary``: a head factory for DARTS' auxiliary classifier after the cell at 2/3 of the depth; its
    output (training mode only) is kept in ``auxiliary_output``; ``auxiliary_widths(channels)`` gives its two
    widths from the channels it reads (None: DARTS' 128 and 768). ``imagenet_stem``: DARTS' three stride-2
    stem convolutions instead of the single stem. ``drop_path_prob`` sets drop path in every node.
    """

    def __init__(self, family: Family, in_channels: int, channels: int, num_classes: int, layers: int,
                 make_cell: CellFactory, stem_multiplier: int = 3, reductions: Sequence[int] | None = None,
                 stem: StemFactory | None = None, head: HeadFactory | None = None,
                 pool: Callable[[], nn.Module] | None = None, auxiliary: HeadFactory | None = None,
                 imagenet_stem: bool = False, auxiliary_widths: Callable[[int], tuple[int, int]] | None = None) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        self.family = family
        reductions = set((layers // 3, 2 * layers // 3) if reductions is None else reductions)
        if layers < 3 and reductions == {layers // 3, 2 * layers // 3}:
            reductions = set()
        bad = sorted(r for r in reductions if not 0 <= r < layers)
        if bad:
            raise ValueError(f"reduction layers {bad} are outside 0..{layers - 1}")
        if imagenet_stem:
            self.stem, self.stem1 = imagenet_stems(family, in_channels, channels)
            c_pp, c_p, c_curr, reduction_prev = channels, channels, channels, True
        else:
            c_stem = stem_multiplier * channels
            self.stem = stem(c_stem) if stem is not None else family.stem(in_channels, c_stem)
            self.stem1 = None
            c_pp, c_p, c_curr, reduction_prev = c_stem, c_stem, channels, False
        cells = []
        self.auxiliary_index = 2 * layers // 3 if auxiliary is not None else None
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cell = make_cell(reduction, reduction_prev, c_pp, c_p, c_curr)
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.out_channels
            if i == self.auxiliary_index:
                widths = auxiliary_widths(c_p) if auxiliary_widths is not None else DARTS_AUXILIARY
                self.auxiliary_head = AuxiliaryHead(family, c_p, auxiliary, 2 if imagenet_stem else 3, widths)
        self.cells = nn.ModuleList(cells)
        self.pool = pool() if pool is not None else family.pool()
        self.out_channels = c_p
        features = c_p * getattr(self.pool, "expansion", 1)  # e.g. average and max pooling side by side
        self.head = head(features) if head is not None else nn.Linear(features, num_classes)
        self.auxiliary_output = None
        if family.memory_format is not None:  # the weights in the family's layout; inputs follow in features
            self.to(memory_format=family.memory_format)

    @property
    def drop_path_prob(self) -> float:
        nodes = [m for m in self.cells.modules() if hasattr(m, "drop_prob")]
        return nodes[0].drop_prob if nodes else 0.0

    @drop_path_prob.setter
    def drop_path_prob(self, value: float) -> None:
        if not 0 <= value < 1:
            raise ValueError(f"drop path probability must be in [0, 1), got {value}")
        for module in self.cells.modules():
            if hasattr(module, "drop_prob"):
                module.drop_prob = value

    def cell_weights(self) -> dict[nn.Module, torch.Tensor] | None:
        """Mixing weights of each cell during search (keyed by the cell); None for a discrete network."""
        return None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.cell_weights()
        if self.family.memory_format is not None and x.dim() == 2 + self.family.spatial_dims:
            x = x.contiguous(memory_format=self.family.memory_format)
        s0 = self.stem(x)
        s1 = self.stem1(s0) if self.stem1 is not None else s0
        self.auxiliary_output = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, None if weights is None else weights[cell])
            if i == self.auxiliary_index and self.training:
                self.auxiliary_output = self.auxiliary_head(s1)
        return self.pool(s1)

    def forward(self, x: torch.Tensor):
        return self.head(self.features(x))


class SearchNetwork(Supernet, CellNetwork):
    """The DARTS supernet of a feedforward family: every edge of every cell a mixed op; one alpha per cell type.

    ``primitives``: names (aliases allowed) of the search space; the family's default set if None.
    Each primitive is checked on a probe input at stride 1 and 2 when the network is built.

    PC-DARTS (Xu et al., 2020), as options: ``partial_channels`` = K > 1 sends 1/K of each edge's channels
    through its mixed op (:class:`~darts.search_space.mixed_op.MixedOp`); ``edge_normalization`` gives
    every edge a weight, the softmax of edge alphas over the edges entering its node, which multiplies the
    edge's output and its mixing weights in the derived genotype.
    """

    def __init__(self, family: str | Family, in_channels: int, channels: int, num_classes: int, layers: int = 8,
                 nodes: int = 4, multiplier: int | None = None, primitives: Sequence[str] | None = None,
                 stem_multiplier: int = 3, reductions: Sequence[int] | None = None,
                 stem: StemFactory | None = None, head: HeadFactory | None = None, affine: bool = False,
                 pool: Callable[[], nn.Module] | None = None, alphas: str = "shared",
                 registry: Registry | None = None, partial_channels: int = 1,
                 edge_normalization: bool = False) -> None:
        if alphas not in ("shared", "per_cell"):
            raise ValueError(f"alphas is 'shared' (one per cell type, as the paper) or 'per_cell', got {alphas!r}")
        if partial_channels < 1 or channels % partial_channels:
            raise ValueError(f"partial_channels (PC-DARTS' K) must be a positive divisor of channels={channels}, "
                             f"got {partial_channels}")
        fam, ops = resolve_space(family, primitives, "feedforward", registry)
        multiplier = nodes if multiplier is None else multiplier
        if not 1 <= multiplier <= nodes:
            raise ValueError(f"multiplier (nodes concatenated) must be in 1..{nodes}, got {multiplier}")
        for primitive in ops:
            for stride in (1, 2):
                check_primitive(fam, primitive, channels // partial_channels, stride, affine=affine)

        def make_cell(reduction: bool, reduction_prev: bool, c_pp: int, c_p: int, c: int) -> Cell:
            return search_cell(fam, ops, nodes, multiplier, c_pp, c_p, c, reduction, reduction_prev, affine,
                               partial_channels)

        super().__init__(fam, in_channels, channels, num_classes, layers, make_cell, stem_multiplier,
                         reductions, stem, head, pool)
        self.primitive_names = tuple(p.name for p in ops)
        edges = sum(2 + i for i in range(nodes))
        concat = tuple(range(2 + nodes - multiplier, 2 + nodes))
        names = [f"cell_{i}" for i in range(layers)] if alphas == "per_cell" else ["normal", "reduce"]
        self.cell_concat = {name: concat for name in names}
        self.alphas = Alphas({name: (edges, len(ops)) for name in names})
        self.edge_alphas = Alphas({name: (edges,) for name in names}) if edge_normalization else None
        self.node_edges = tuple(2 + i for i in range(nodes))
        self.alpha_sharing = alphas
        self.partial_channels = partial_channels

    def arch_weights(self, mode: Mode | None = None) -> dict[str, torch.Tensor]:
        """Each edge's mixing weights: the strategy's (softmax(alpha) for DARTS), times the edge's weight
        under edge normalisation."""
        weights = super().arch_weights(mode)
        if self.edge_alphas is None or self.fixed_weights is not None:
            return weights
        return {name: w * self.edge_weights(self.edge_alphas[name]).unsqueeze(-1) for name, w in weights.items()}

    def edge_weights(self, edge_alphas: torch.Tensor) -> torch.Tensor:
        """Edge normalisation: the softmax of ``edge_alphas`` over the edges entering each node."""
        return torch.cat([F.softmax(part, dim=-1) for part in edge_alphas.split(self.node_edges)])

    @property
    def searched_cell_types(self) -> tuple[str, ...]:
        """The alpha names some cell uses (a network without reductions never uses ``reduce``)."""
        if self.alpha_sharing == "per_cell":
            return tuple(self.alphas)
        return tuple(name for name in self.alphas if any(cell.kind == name for cell in self.cells))

    def cell_weights(self) -> dict[str, torch.Tensor]:
        weights = self.arch_weights()
        if self.alpha_sharing == "per_cell":
            return {cell: weights[f"cell_{i}"] for i, cell in enumerate(self.cells)}
        return {cell: weights[cell.kind] for cell in self.cells}


class Network(CellNetwork):
    """A discrete network built from a genotype, to train from scratch.

    ``auxiliary=True`` adds DARTS' auxiliary head (a linear layer to ``num_classes``, or ``auxiliary`` as a
    head factory), ``auxiliary_widths`` sizes it (e.g. :func:`scaled_auxiliary`; None: DARTS' own);
    ``imagenet_stem=True`` gives the ImageNet-sized network's stems.
    """

    def __init__(self, genotype: Genotype | str, in_channels: int, channels: int, num_classes: int,
                 layers: int = 8, stem_multiplier: int = 3, reductions: Sequence[int] | None = None,
                 stem: StemFactory | None = None, head: HeadFactory | None = None,
                 pool: Callable[[], nn.Module] | None = None, auxiliary: bool | HeadFactory = False,
                 imagenet_stem: bool = False, registry: Registry | None = None,
                 auxiliary_widths: Callable[[int], tuple[int, int]] | None = None) -> None:
        registry = resolve_registry(registry)
        genotype = load_genotype(genotype, registry)
        fam = registry.family(genotype.family)
        if fam.cell != "feedforward":
            raise ValueError(f"genotype of family {fam.name!r} has {fam.cell} cells; use RecurrentNetwork")
        used: dict[str, Primitive] = {name: registry.primitive(fam.name, name)
                                      for cell in genotype.cells.values() for name, _ in cell.genes}

        per_cell = "normal" not in genotype.cells
        if per_cell and len(genotype.cells) != layers:
            raise ValueError(f"the genotype has one cell per layer for {len(genotype.cells)} layers; the network "
                             f"has {layers} (build it with layers={len(genotype.cells)})")
        built = []

        def make_cell(reduction: bool, reduction_prev: bool, c_pp: int, c_p: int, c: int) -> Cell:
            name = f"cell_{len(built)}" if per_cell else ("reduce" if reduction else "normal")
            built.append(name)
            return discrete_cell(fam, genotype.cells[name], used, c_pp, c_p, c, reduction, reduction_prev)

        if auxiliary is True:
            auxiliary = (lambda features: nn.Linear(features, num_classes)) if head is None else head
        super().__init__(fam, in_channels, channels, num_classes, layers, make_cell, stem_multiplier,
                         reductions, stem, head, pool, auxiliary or None, imagenet_stem, auxiliary_widths)
        self.genotype = genotype
