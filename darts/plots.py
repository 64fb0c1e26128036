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
    """One diagram per cell type: inputs on the left, intermediate nodes in a zigzag, the output on the right;
    each edge labelled with its primitive."""
    plt = _pyplot()
    cells = list(genotype.cells.items())
    longest = max(len(cell.nodes) for _, cell in cells)
    figure, axes = plt.subplots(len(cells), 1, figsize=(1.5 * longest + 4, 3.6 * len(cells)), squeeze=False)
    for axis, (name, cell) in zip(axes[:, 0], cells):
        labels = [f"${label}$" for label in INPUT_LABELS.get(cell.inputs, [f"in {i}" for i in range(cell.inputs)])]
        labels += [str(i) for i in range(len(cell.nodes))]
        positions = {i: (0.0, 2.4 - 1.8 * i) if cell.inputs > 1 else (0.0, 1.5) for i in range(cell.inputs)}
        for i in range(len(cell.nodes)):
            positions[cell.inputs + i] = (2.0 + 1.6 * i, 3.0 if i % 2 == 0 else 0.0)
        output = len(positions)
        positions[output] = (2.0 + 1.6 * len(cell.nodes) + 0.8, 1.5)
        labels.append(OUTPUT_LABELS.get(cell.inputs, "out"))
        points = list(positions.values())
        for node, genes in enumerate(cell.nodes):
            for k, (primitive, source) in enumerate(genes):
                points.append(_edge(axis, positions[source], positions[cell.inputs + node], primitive,
                                    (0.12 if k == 0 else -0.12), "black"))
        for state in cell.concat:
            _edge(axis, positions[state], positions[output], "", 0.0, "0.65")
        for index, (x, y) in positions.items():
            colour = "#9ecae1" if index < cell.inputs else "#fdd49e" if index == output else "#c7e9c0"
            axis.text(x, y, labels[index], ha="center", va="center", fontsize=10, zorder=3,
                      bbox={"boxstyle": "round,pad=0.4", "facecolor": colour, "edgecolor": "0.3"})
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        axis.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
        axis.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
        axis.set_aspect("equal")
        axis.set_title(f"{genotype.family}: {name} cell")
        axis.axis("off")
    figure.tight_layout()
    return _save(figure, path)


def _edge(axis, start, end, label: str, bend: float, colour: str) -> tuple[float, float]:
    """An arrow bent by ``bend`` (matplotlib's arc3), its label at the middle of the arc; returns that point.

    The axes have an equal aspect, so the arc's control point is the same in data and display coordinates.
    """
    from matplotlib.patches import FancyArrowPatch

    axis.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={bend}", arrowstyle="-|>",
                                   mutation_scale=12, color=colour, shrinkA=14, shrinkB=14, zorder=1))
    (x0, y0), (x1, y1) = start, end
    middle = ((x0 + x1) / 2 + bend * (y1 - y0) / 2, (y0 + y1) / 2 - bend * (x1 - x0) / 2)
    if label:
        axis.text(*middle, label, fontsize=7, ha="center", va="center", color="darkred", zorder=2,
                  bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    return middle


def plot_alpha_history(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """softmax(alpha) of every edge over the epochs: one panel per edge, one line per primitive, per cell type.

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
    figure, axes = plt.subplots(rows_per_cell * len(cells), columns, sharex=True, sharey=True, squeeze=False,
                                figsize=(2.3 * columns, 1.9 * rows_per_cell * len(cells)))
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
            axis.set_title(f"{cell} edge {edge}", fontsize=8)
            axis.tick_params(labelsize=7)
            if len(epochs) <= 12:  # epochs are whole numbers: tick each one
                axis.set_xticks(epochs)
                axis.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
            else:
                axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=min(len(primitives), 8), fontsize=8)
    figure.supxlabel("epoch")
    figure.supylabel("softmax(alpha)")
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(figure, path)


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
    top.set_title("top softmax(alpha) per edge")
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
