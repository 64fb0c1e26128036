"""Pictures of a run, as PNG files: cell diagrams of a genotype, the evolution of alpha, the metric curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from darts.genotype import Genotype

INPUT_LABELS = {2: ("c_{k-2}", "c_{k-1}"), 1: ("x_t, h_{t-1}",)}
OUTPUT_LABELS = {2: "$c_{k}$\n(concat)", 1: "$h_t$\n(mean)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_genotype(genotype: Genotype, path: str | Path) -> Path:
    """:func:`genotype_figure` saved as a PNG file."""
    return _save(genotype_figure(genotype), path)


def genotype_figure(genotype: Genotype):
    """One layered diagram per cell type, numbered as ``darts genotype show`` numbers the states.

    The states stand in one row in the order the cell computes them (its inputs first, the output last). Each
    edge is a half-ellipse from its source to its node, as high as it is long, so it passes over the states in
    between and never through their boxes; a node's first edge runs above the row, its second below, and each
    edge's primitive is written at its apex (two edges of one length have apexes at least one column apart).
    The concatenated (or averaged) states drop onto a line that leads to the output.
    """
    plt = _pyplot()
    cells = list(genotype.cells.items())
    width = max(SPACING * (cell.inputs + len(cell.nodes)) for _, cell in cells) + SPACING + 0.6
    heights = [top - bottom for bottom, top in (_extent(cell) for _, cell in cells)]
    figure, axes = plt.subplots(len(cells), 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                                figsize=(INCH * width, INCH * sum(heights) + 0.45 * len(cells)))
    for axis, (name, cell) in zip(axes[:, 0], cells):
        _draw_cell(axis, cell)
        combine = "mean" if cell.inputs == 1 else "concat"
        axis.set_title(f"{genotype.family}: {name} cell ({combine} of states {list(cell.concat)})", fontsize=10)
    figure.tight_layout()
    return figure


SPACING = 2.0  # columns apart, in data units: one column per state
BOX = 0.32     # half-height of a state's box, in data units
ARC = 0.35     # an edge's height over its length
BUS = 0.6      # the line to the output, below the lowest edge
INCH = 0.55    # inches per data unit


def _edges(cell) -> list[tuple[int, int]]:
    """(node state, source state) of every gene of ``cell``."""
    return [(cell.inputs + i, source) for i, genes in enumerate(cell.nodes) for _, source in genes]


def _extent(cell) -> tuple[float, float]:
    """The lowest and highest point of a cell's diagram, in data units: the bus line, the highest apex."""
    sides: dict[int, float] = {1: 0.0, -1: 0.0}
    for i, genes in enumerate(cell.nodes):
        for k, (_, source) in enumerate(genes):
            side = 1 if k % 2 == 0 else -1
            sides[side] = max(sides[side], ARC * SPACING * (cell.inputs + i - source))
    return -BOX - sides[-1] - BUS - 0.4, BOX + sides[1] + 0.5


def _draw_cell(axis, cell) -> None:
    """One cell in the layout :func:`genotype_figure` describes, with equal aspect so that text sizes hold."""
    import numpy as np

    inputs = INPUT_LABELS.get(cell.inputs, [f"in {i}" for i in range(cell.inputs)])
    states = cell.inputs + len(cell.nodes)
    labels = [f"{i}: ${label}$" for i, label in enumerate(inputs)] + [str(i) for i in range(cell.inputs, states)]
    output = states
    labels.append(OUTPUT_LABELS.get(cell.inputs, "out"))
    x = [SPACING * i for i in range(states + 1)]
    for i, genes in enumerate(cell.nodes):
        node = cell.inputs + i
        for k, (primitive, source) in enumerate(genes):
            side = 1 if k % 2 == 0 else -1
            span = x[node] - x[source]
            half, height = span / 2, ARC * span
            angles = np.linspace(np.pi, 0, 60)  # from the source (left) to the node (right)
            xs = x[source] + half + half * np.cos(angles) * 0.92  # ends inside the boxes' width, not at centres
            ys = side * (BOX + height * np.sin(angles))
            axis.plot(xs[:-1], ys[:-1], color="black", linewidth=1, zorder=1)
            axis.annotate("", xy=(xs[-1], ys[-1]), xytext=(xs[-4], ys[-4]), zorder=1,
                          arrowprops={"arrowstyle": "-|>", "color": "black", "mutation_scale": 11, "linewidth": 1})
            axis.text(x[source] + half, side * (BOX + height), primitive, fontsize=7.5, ha="center", va="center", color="darkred",
                      zorder=2, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    bottom, top = _extent(cell)
    bus = bottom + 0.4
    for state in cell.concat:  # each output state drops onto the line to the output
        axis.plot([x[state], x[state]], [-BOX, bus], color="0.6", linewidth=1, zorder=0)
    axis.plot([min(x[s] for s in cell.concat), x[output]], [bus, bus], color="0.6", linewidth=1, zorder=0)
    axis.annotate("", xy=(x[output], -BOX - 0.05), xytext=(x[output], bus), zorder=0,
                  arrowprops={"arrowstyle": "-|>", "color": "0.6", "mutation_scale": 11, "linewidth": 1})
    for index, label in enumerate(labels):
        colour = "#9ecae1" if index < cell.inputs else "#fdd49e" if index == output else "#c7e9c0"
        axis.text(x[index], 0, label, ha="center", va="center", fontsize=9, zorder=3,
                  bbox={"boxstyle": "round,pad=0.35", "facecolor": colour, "edgecolor": "0.3"})
    axis.set_xlim(-0.9 * SPACING / 2 - 0.4, x[output] + 0.9 * SPACING / 2 + 0.2)
    axis.set_ylim(bottom, top)
    axis.set_aspect("equal")
    axis.axis("off")


def plot_alpha_history(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The derived mixing weights (softmax(alpha) for DARTS) of every edge over the epochs: one panel per edge,
    one line per primitive, per cell type.

    ``records``: the lines of ``alphas.jsonl`` (``epoch``, ``primitives``, ``weights`` per cell type).
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    if not records:
        raise ValueError("no alpha history to plot (the search finished no epoch)")
    primitives = records[0]["primitives"]
    epochs = [r["epoch"] for r in records]
    cells = list(records[0]["weights"])
    edges = len(records[0]["weights"][cells[0]])
    columns = min(edges, 7)
    rows_per_cell = -(-edges // columns)
    with plt.rc_context({"xtick.labelsize": 7, "ytick.labelsize": 7}):  # once, not per panel: it costs seconds
        figure, axes = plt.subplots(rows_per_cell * len(cells), columns, sharex=True, sharey=True, squeeze=False,
                                    figsize=(2.3 * columns, max(2.6, 1.9 * rows_per_cell * len(cells))))
    colours = plt.get_cmap("tab10" if len(primitives) <= 10 else "tab20")
    for c, cell in enumerate(cells):
        for edge in range(rows_per_cell * columns):
            axis = axes[c * rows_per_cell + edge // columns, edge % columns]
            if edge >= edges:
                axis.axis("off")
                continue
            for p, primitive in enumerate(primitives):
                axis.plot(epochs, [r["weights"][cell][edge][p] for r in records], color=colours(p), label=primitive,
                          marker="o", markersize=3 if len(epochs) > 1 else 5)  # one epoch: a point, not a line
            axis.set_title(f"{cell} edge {edge}{_edge_ends(cell, edges, edge)}", fontsize=8)
    shared = axes[0, 0]  # the x axis is shared: set its ticks once
    if len(epochs) <= 12:  # epochs are whole numbers: tick each one
        shared.set_xticks(epochs)
        shared.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    else:
        shared.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=min(len(primitives), 8), fontsize=8)
    figure.supxlabel("epoch")
    figure.supylabel("mixing weight")
    width, height = figure.get_size_inches()  # fixed margins in inches: tight_layout takes seconds on many panels
    figure.subplots_adjust(left=0.85 / width, right=1 - 0.1 / width, bottom=0.55 / height, top=1 - 0.75 / height,
                           wspace=0.12, hspace=0.55)
    return _save(figure, path)


def _edge_ends(cell: str, edges: int, edge: int) -> str:
    """`` (state s -> n)``: where alpha row ``edge`` of a cell runs, numbered as the cell diagram and
    ``darts genotype show`` number the states (rows go node by node, each node's sources in order); empty
    when the row count fits no cell of one or two inputs."""
    inputs = 1 if cell == "recurrent" else 2
    ends, node = [], inputs
    while len(ends) < edges:
        ends += [(source, node) for source in range(node)]
        node += 1
    if len(ends) != edges:
        return ""
    source, node = ends[edge]
    return f" ({source}\u2192{node})"


def plot_metrics(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss curves (training, validation) and the other validation metrics over the epochs."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    metrics = [f"{split}_{m}" for m in ("accuracy", "macro_f1", "r2", "ppl") for split in ("val", "train")
               if f"{split}_{m}" in history[0]]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), squeeze=False)
    for key in ("train_loss", "val_loss", "arch_val_loss"):
        if any(key in row for row in history):  # no alpha loss in warm-up epochs
            axes[0, 0].plot(epochs, [row.get(key, float("nan")) for row in history], marker="o", label=key)
    axes[0, 0].set_title("loss")
    for key in metrics:
        axes[0, 1].plot(epochs, [row[key] for row in history], marker="o", label=key)
    axes[0, 1].set_title("metrics")
    if any(key.endswith("_ppl") for key in metrics):
        axes[0, 1].set_yscale("log")
    for axis in axes[0]:
        axis.set_xlabel("epoch")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def plot_diagnostics(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """A search's diagnostics over the epochs (:mod:`darts.diagnostics`): the top weight per edge (median and
    range) against uniform and the decisive line; the shares of decisive edges and of parameter-free
    primitives in the genotype, with the epochs where the genotype changed; the mean normalised entropy."""
    from darts.diagnostics import DECISIVE

    plt = _pyplot()
    if not records:
        raise ValueError("no diagnostics to plot (the search finished no epoch)")
    epochs = [r["epoch"] for r in records]
    uniform = records[0]["uniform"]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), squeeze=False)
    top = axes[0, 0]
    top.fill_between(epochs, [r["alpha_top_min"] for r in records], [r["alpha_top_max"] for r in records],
                     alpha=0.25, label="top weight, range over edges")
    top.plot(epochs, [r["alpha_top_median"] for r in records], marker="o", label="top weight, median")
    top.axhline(uniform, color="0.4", linestyle=":", label=f"uniform ({uniform:.3f})")
    top.axhline(DECISIVE * uniform, color="tab:red", linestyle="--", label=f"decisive ({DECISIVE:g}x uniform)")
    top.set_title("top mixing weight per edge")
    shares = axes[0, 1]
    shares.plot(epochs, [r["decisive_edges"] for r in records], marker="o", label="decisive edges")
    shares.plot(epochs, [r["parameter_free_share"] for r in records], marker="s", label="parameter-free genes")
    changed = [r["epoch"] for r in records if r["genotype_changed"]]
    if changed:
        shares.scatter(changed, [1.02] * len(changed), marker="v", color="tab:red", label="genotype changed")
    shares.set_ylim(-0.05, 1.1)
    shares.set_title("shares")
    entropy = axes[0, 2]
    entropy.plot(epochs, [r["alpha_entropy"] for r in records], marker="o")
    entropy.set_ylim(0, 1.05)
    entropy.set_title("mean entropy / log(primitives)")
    from matplotlib.ticker import MaxNLocator

    warmup = [r["epoch"] for r in records if not r.get("arch_steps", 1)]
    for axis in axes[0]:
        if warmup:
            axis.axvspan(min(warmup) - 0.5, max(warmup) + 0.5, color="0.9", zorder=0,
                         label="warm-up (no alpha step)" if axis is top else None)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


def _save(figure, path: str | Path) -> Path:
    """Save atomically (a temporary file in the same folder, then rename) and close the figure."""
    import io

    from darts.io import atomic_write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    _pyplot().close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
