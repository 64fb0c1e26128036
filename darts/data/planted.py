"""A planted architecture: data labelled by a fixed random teacher network built from a known genotype.

The teacher is a discrete conv1d network (two normal cells of one genotype) whose edges use primitives with
clearly different receptive fields and kinds: identity (1 position), 3-wide max and average pooling, and a
5-wide dilated separable convolution (9 positions). Its inputs are Gaussian sequences; its scalar output, cut at
its quantiles, gives balanced
classes. A search over the same primitives and layout can then be scored by how much of the teacher's cell
it recovers (:func:`recovery`), against what a random genotype recovers by chance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import TensorDataset

from darts.genotype import NONE, Genotype

#: the primitives of the planted space: distinct receptive fields, with and without weights
PLANTED_PRIMITIVES = ("none", "skip_connect", "max_pool_3", "avg_pool_3", "dil_conv_5")


#: cells of the teacher (and of the planted preset's search network): two normal cells, no reduction
LAYERS = 2


#: the planted cell's genes, two a node: node 0 = max_pool_3(input 0) + skip_connect(input 1), node 1 =
#: dil_conv_5(node 0) + avg_pool_3(input 1)
PLANTED_GENES = (("max_pool_3", 0), ("skip_connect", 1), ("dil_conv_5", 2), ("avg_pool_3", 1))


def check_genes(genes: Iterable[Sequence]) -> list[tuple[str, int]]:
    """``genes`` as (primitive, input) pairs, two a node, or a ValueError that names what is wrong: each
    primitive one of the planted space's (not ``none``), each input one of the node's (0 and 1 are the cell's
    inputs, 2 + k is node k)."""
    genes = [tuple(gene) for gene in genes]
    if not genes or len(genes) % 2:
        raise ValueError(f"the teacher's genes come two a node, as [[primitive, input], ...]; got {len(genes)}")
    usable = [p for p in PLANTED_PRIMITIVES if p != NONE]
    for index, gene in enumerate(genes):
        node = index // 2
        if len(gene) != 2 or gene[0] not in usable or not isinstance(gene[1], int) or not 0 <= gene[1] < 2 + node:
            raise ValueError(f"teacher gene {index} {list(gene)}: a [primitive, input] pair with a primitive of "
                             f"{', '.join(usable)} and an input of node {node} (0 to {1 + node})")
    return [(str(p), int(i)) for p, i in genes]


def teacher_genotype(genes: Iterable[Sequence] | None = None) -> Genotype:
    """The teacher's cell: ``genes`` ((primitive, input) pairs, two a node, every node concatenated), by default
    the planted cell (:data:`PLANTED_GENES`). (The reduce cell is there for the format; a network without
    reductions never uses it.)"""
    normal = check_genes(PLANTED_GENES if genes is None else genes)
    concat = list(range(2, 2 + len(normal) // 2))
    return Genotype.from_darts("conv1d", PLANTED_PRIMITIVES, normal=normal, normal_concat=concat,
                               reduce=normal, reduce_concat=concat)


def one_gene_changes(teacher: Genotype | None = None) -> list[tuple[str, Genotype]]:
    """Every cell that differs from the teacher's in one gene's primitive (same input), named
    ``node N: old(input) -> new``: the controls that say whether the teacher's data single out its cell."""
    teacher = teacher or teacher_genotype()
    normal = [list(node) for node in teacher.cells["normal"].nodes]
    changes = []
    for index, node in enumerate(normal):
        for position, (primitive, source) in enumerate(node):
            for other in teacher.primitives:
                if other in (NONE, primitive):
                    continue
                genes = [list(n) for n in normal]
                genes[index][position] = (other, source)
                flat = [gene for n in genes for gene in n]
                concat = list(teacher.cells["normal"].concat)
                changes.append((f"node {index}: {primitive}({source}) -> {other}",
                                Genotype.from_darts(teacher.family, teacher.primitives, normal=flat,
                                                    normal_concat=concat, reduce=flat, reduce_concat=concat)))
    return changes


def teacher_network(in_channels: int, channels: int, seed: int, genotype: Genotype | None = None) -> nn.Module:
    """The teacher: stem, two planted cells, global max pooling (average pooling would make an average-pooling
    edge and an identity nearly the same function), one output; random weights from ``seed``.
    ``genotype`` replaces the planted one (to see what changing the cell does to the labels)."""
    from darts.assemble import GlobalPool
    from darts.search_space import Network

    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        network = Network(genotype or teacher_genotype(), in_channels, channels, 1, layers=LAYERS, stem_multiplier=1,
                          pool=lambda: GlobalPool("max"))
        for module in network.modules():  # weights large enough that every edge shapes the output
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.normal_(module.weight, 0.0, (2.0 / module.weight[0].numel()) ** 0.5)
    finally:
        torch.set_rng_state(generator_state)
    return network.eval()


def planted_sequences(samples: int, length: int = 32, channels: int = 4, classes: int = 4,
                      teacher_channels: int = 8, teacher_seed: int = 0, seed: int = 0,
                      genotype: Genotype | None = None) -> TensorDataset:
    """Gaussian sequences (samples, channels, length) labelled by the teacher (of ``genotype``, by default the
    planted cell): its output cut at the quantiles of this sample into ``classes`` balanced classes, or with
    ``classes=0`` the output itself, standardised (a regression target)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, channels, length, generator=generator)
    with torch.no_grad():
        scores = teacher_network(channels, teacher_channels, teacher_seed, genotype)(inputs).squeeze(-1)
    if classes == 0:
        return TensorDataset(inputs, (scores - scores.mean()) / scores.std())
    edges = torch.quantile(scores, torch.linspace(0, 1, classes + 1)[1:-1])
    return TensorDataset(inputs, torch.bucketize(scores, edges))


def recovery(teacher: Genotype, searched: Genotype, cells: tuple[str, ...] = ("normal",)) -> dict[str, float]:
    """How much of the teacher's cells a genotype holds, and what a random genotype holds on average.

    ``genes``: share of the teacher's (primitive, input) pairs found in the same node; ``inputs``: share of
    its inputs chosen; ``primitives``: share of its primitives used in the same node, whatever the input.
    ``chance_*``: the expectations for a genotype drawn as :meth:`Supernet.random_genotype` draws (k distinct
    inputs of the n a node has, each with a primitive drawn uniformly among the usable ones)."""
    usable = [p for p in teacher.primitives if p != NONE]
    m = len(usable)
    found = {"genes": 0, "inputs": 0, "primitives": 0}
    chance = {"genes": 0.0, "inputs": 0.0, "primitives": 0.0}
    total = 0
    for name in cells:
        for index, (planted, chosen) in enumerate(zip(teacher.cells[name].nodes, searched.cells[name].nodes)):
            n, k = teacher.cells[name].inputs + index, len(chosen)
            for primitive, source in planted:
                total += 1
                found["genes"] += (primitive, source) in chosen
                found["inputs"] += any(s == source for _, s in chosen)
                found["primitives"] += any(p == primitive for p, _ in chosen)
                chance["genes"] += min(k, n) / n / m
                chance["inputs"] += min(k, n) / n
                chance["primitives"] += 1 - (1 - 1 / m) ** min(k, n)
    return {**{key: value / total for key, value in found.items()},
            **{f"chance_{key}": value / total for key, value in chance.items()}}
