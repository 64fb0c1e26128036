"""Genotypes: the discrete result of a search, its derivation from alphas, and its JSON file format.

A genotype records, for each cell type, the chosen (primitive, input) pairs of every intermediate node and
the states the cell concatenates (or averages, for recurrent cells). Input indices count the cell's inputs
first (two for feedforward cells: the outputs of the two previous cells; one for recurrent cells: the
initial state), then the intermediate nodes in order. The file also records the family and the primitive
set searched, and is checked on load against the registry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from darts.io import atomic_write_json
from darts.registry import unknown_name_message

if TYPE_CHECKING:
    from darts.registry import Registry

FORMAT = "darts-genotype"
VERSION = 1
NONE = "none"

#: the cell types each kind of family needs
CELL_TYPES = {"feedforward": ("normal", "reduce"), "recurrent": ("recurrent",)}
CELL_INPUTS = {"feedforward": 2, "recurrent": 1}


class GenotypeError(ValueError):
    """A genotype that is malformed or does not fit the registry; the message names the field."""


Gene = tuple[str, int]


@dataclass(frozen=True)
class CellGenotype:
    """One cell type: per intermediate node the (primitive, input index) pairs, and the concatenated states."""

    nodes: tuple[tuple[Gene, ...], ...]
    concat: tuple[int, ...]
    inputs: int = 2

    @property
    def genes(self) -> list[Gene]:
        """All (primitive, input) pairs, node after node (the DARTS tuple layout)."""
        return [gene for node in self.nodes for gene in node]


@dataclass(frozen=True)
class Genotype:
    """A discrete architecture: its family, the primitive set searched, and one :class:`CellGenotype` per cell type."""

    family: str
    primitives: tuple[str, ...]
    cells: Mapping[str, CellGenotype] = field(default_factory=dict)

    # --- conversion ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The genotype file's JSON object (``format``, ``version``, ``family``, ``primitives``, ``cells``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "family": self.family,
            "primitives": list(self.primitives),
            "cells": {
                name: {"inputs": cell.inputs, "nodes": [[list(gene) for gene in node] for node in cell.nodes],
                       "concat": list(cell.concat)}
                for name, cell in self.cells.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> "Genotype":
        """Parse the JSON layout, with an error naming the first missing or malformed field."""
        reader = _FieldReader(source)
        data = reader.mapping(data, "")
        file_format = reader.get(data, "format", str)
        if file_format != FORMAT:
            reader.fail("format", f"is {file_format!r}; expected {FORMAT!r}")
        version = reader.get(data, "version", int)
        if version > VERSION or version < 1:
            reader.fail("version", f"is {version}; this darts reads versions 1 to {VERSION}")
        family = reader.get(data, "family", str)
        primitives = reader.get(data, "primitives", list)
        for i, name in enumerate(primitives):
            if not isinstance(name, str):
                reader.fail(f"primitives[{i}]", f"is {name!r}; expected a primitive name")
        cells_data = reader.mapping(reader.get(data, "cells", dict), "cells")
        cells = {}
        for cell_name, cell_data in cells_data.items():
            where = f"cells.{cell_name}"
            cell_data = reader.mapping(cell_data, where)
            inputs = reader.get(cell_data, "inputs", int, where)
            nodes = []
            for i, node in enumerate(reader.get(cell_data, "nodes", list, where)):
                if not isinstance(node, list):
                    reader.fail(f"{where}.nodes[{i}]", "must be a list of [primitive, input] pairs")
                genes = []
                for j, gene in enumerate(node):
                    ok = (isinstance(gene, (list, tuple)) and len(gene) == 2 and isinstance(gene[0], str)
                          and isinstance(gene[1], int) and not isinstance(gene[1], bool))
                    if not ok:
                        reader.fail(f"{where}.nodes[{i}][{j}]", f"is {gene!r}; expected [primitive, input index]")
                    genes.append((gene[0], gene[1]))
                nodes.append(tuple(genes))
            concat = reader.get(cell_data, "concat", list, where)
            for i, index in enumerate(concat):
                if not isinstance(index, int) or isinstance(index, bool):
                    reader.fail(f"{where}.concat[{i}]", f"is {index!r}; expected a state index")
            cells[cell_name] = CellGenotype(tuple(nodes), tuple(concat), inputs)
        return cls(family, tuple(primitives), cells)

    @classmethod
    def from_darts(cls, family: str, primitives: Sequence[str], **cells: Sequence) -> "Genotype":
        """Build from the DARTS tuple layout, e.g. ``normal=[(op, j), ...], normal_concat=[2, 3, 4, 5]``.

        Feedforward cells take two genes a node; ``recurrent=`` with ``concat=`` takes one a node.
        """
        result = {}
        for name, genes in cells.items():
            if name.endswith("concat"):
                continue
            per_node, inputs = (1, 1) if name == "recurrent" else (2, 2)
            concat = cells.get(f"{name}_concat", cells.get("concat"))
            genes = [tuple(gene) for gene in genes]
            nodes = tuple(tuple(genes[i:i + per_node]) for i in range(0, len(genes), per_node))
            result[name] = CellGenotype(nodes, tuple(concat), inputs)
        return cls(family, tuple(primitives), result)

    def with_family(self, family: str) -> "Genotype":
        """The same cells for another family with the same primitive names (e.g. DARTS_V2 in 1D)."""
        return replace(self, family=family)

    # --- checks ----------------------------------------------------------------------------------
    def validate(self, registry: "Registry", source: str = "genotype") -> "Genotype":
        """Check against ``registry`` (e.g. :func:`darts.get_registry`); return the genotype with canonical
        primitive names."""
        reader = _FieldReader(source)
        if self.family not in registry.family_names:
            reader.fail("family", unknown_name_message("family", self.family, registry.family_names))
        family = registry.family(self.family)

        def canonical(name: str, where: str) -> str:
            try:
                return registry.canonical_name(self.family, name)
            except KeyError as error:
                reader.fail(where, str(error))

        searched = tuple(canonical(name, f"primitives[{i}]") for i, name in enumerate(self.primitives))
        expected = CELL_TYPES[family.cell]
        per_cell = family.cell == "feedforward" and set(self.cells) == {f"cell_{i}" for i in range(len(self.cells))}
        if per_cell:  # one cell genotype per layer (searched with separate alphas per cell)
            expected = tuple(self.cells)
        for cell_name in expected:
            if cell_name not in self.cells:
                reader.fail(f"cells.{cell_name}", f"is missing; a {family.cell} family needs cells "
                                                  f"{', '.join(expected)}")
        for cell_name in self.cells:
            if cell_name not in expected:
                reader.fail(f"cells.{cell_name}", f"is not a cell type of family {self.family!r} "
                                                  f"(expected {', '.join(expected)}, or cell_0, cell_1, ... "
                                                  "for one genotype per cell)")
        cells = {}
        for cell_name, cell in self.cells.items():
            where = f"cells.{cell_name}"
            if cell.inputs != CELL_INPUTS[family.cell]:
                reader.fail(f"{where}.inputs", f"is {cell.inputs}; {family.cell} cells have "
                                               f"{CELL_INPUTS[family.cell]}")
            if not cell.nodes:
                reader.fail(f"{where}.nodes", "is empty; a cell needs at least one node")
            nodes = []
            for i, node in enumerate(cell.nodes):
                if not node:
                    reader.fail(f"{where}.nodes[{i}]", "has no incoming edge")
                genes = []
                for j, (name, index) in enumerate(node):
                    gene_where = f"{where}.nodes[{i}][{j}]"
                    name = canonical(name, gene_where)
                    if searched and name not in searched:
                        reader.fail(gene_where, f"uses primitive {name!r}, which is not in the recorded "
                                                f"primitive set {list(searched)}")
                    if not 0 <= index < cell.inputs + i:
                        reader.fail(gene_where, f"has input index {index}; node {i} may take inputs "
                                                f"0..{cell.inputs + i - 1}")
                    genes.append((name, index))
                nodes.append(tuple(genes))
            states = cell.inputs + len(cell.nodes)
            if not cell.concat:
                reader.fail(f"{where}.concat", "is empty")
            for i, index in enumerate(cell.concat):
                if not 0 <= index < states:
                    reader.fail(f"{where}.concat[{i}]", f"is {index}; states are numbered 0..{states - 1}")
            if len(set(cell.concat)) != len(cell.concat):
                duplicated = sorted({i for i in cell.concat if cell.concat.count(i) > 1})
                reader.fail(f"{where}.concat", f"lists state {duplicated[0]} twice; each state is concatenated "
                                               "once")
            if all(index < cell.inputs for index in cell.concat):
                reader.fail(f"{where}.concat", f"is {list(cell.concat)}: only the cell's inputs, so every node is "
                                               f"unused; concatenate intermediate states "
                                               f"{cell.inputs}..{states - 1}")
            if all(name == "none" for node in nodes for name, _ in node):
                reader.fail(f"{where}.nodes", "has 'none' on every edge, so the cell computes only zeros")
            cells[cell_name] = CellGenotype(tuple(nodes), cell.concat, cell.inputs)
        return Genotype(self.family, searched, cells)

    # --- files -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the JSON file atomically; an existing file is kept unless ``overwrite=True``."""
        return atomic_write_json(path, self.to_dict(), overwrite=overwrite)

    def __str__(self) -> str:
        lines = [f"Genotype of family {self.family} (searched over: {', '.join(self.primitives)})"]
        for cell_name, cell in self.cells.items():
            combine = "mean" if cell_name == "recurrent" else "concat"
            lines.append(f"  {cell_name} cell, {combine} of states {list(cell.concat)}:")
            for i, node in enumerate(cell.nodes):
                edges = " + ".join(f"{name}(state {index})" for name, index in node)
                lines.append(f"    state {cell.inputs + i} = {edges}")
        return "\n".join(lines)


class _FieldReader:
    """Reads fields of a JSON mapping, failing with the field's dotted path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str):
        raise GenotypeError(f"{self.source}: field {where or '(top level)'!r} {problem}")

    def mapping(self, value: Any, where: str) -> Mapping:
        if not isinstance(value, Mapping):
            self.fail(where, f"must be a JSON object, not {type(value).__name__}")
        return value

    def get(self, data: Mapping, key: str, kind: type, where: str = "") -> Any:
        path = f"{where}.{key}" if where else key
        if key not in data:
            self.fail(path, "is missing")
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(path, f"must be of type {kind.__name__}, not {type(value).__name__}")
        return value


def read_genotype(source: str | os.PathLike | Genotype, registry: "Registry") -> Genotype:
    """A genotype validated against ``registry``, from a JSON file path, a name registered there
    (``DARTS_V2``) or a Genotype. :func:`darts.load_genotype` is this with the process-wide registry."""
    if isinstance(source, Genotype):
        return source.validate(registry)
    path = Path(source)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise GenotypeError(f"{path}: not valid JSON: {error}") from error
        return Genotype.from_dict(data, source=str(path)).validate(registry, source=str(path))
    name = str(source)
    if name in registry.genotype_names:
        return registry.genotype(name).validate(registry, source=f"genotype {name}")
    message = unknown_name_message("genotype", name, registry.genotype_names)
    raise GenotypeError(f"{message} (and no file of that name exists)")


def derive_cell(weights: torch.Tensor, primitives: Sequence[str], inputs: int, k: int,
                concat: Sequence[int]) -> CellGenotype:
    """Discretise one cell type: per node keep the ``k`` strongest incoming edges and their best primitive.

    ``weights`` has one row per edge (node after node, each node's inputs in order) and one column per
    primitive. An edge's strength is its strongest non-``none`` weight, as in DARTS.
    """
    weights = weights.detach().float().cpu()
    usable = [i for i, name in enumerate(primitives) if name != NONE]
    if not usable:
        raise ValueError("cannot derive a genotype from a primitive set that holds only 'none'")
    nodes, start, node = [], 0, 0
    while start < weights.shape[0]:
        count = inputs + node
        rows = weights[start:start + count][:, usable]
        strength, best = rows.max(dim=1)
        keep = torch.argsort(strength, descending=True, stable=True)[:min(k, count)]
        nodes.append(tuple((primitives[usable[int(best[j])]], int(j)) for j in keep))
        start += count
        node += 1
    if start != weights.shape[0]:
        raise ValueError(f"{weights.shape[0]} edges do not form whole nodes with {inputs} cell inputs")
    return CellGenotype(tuple(nodes), tuple(concat), inputs)
