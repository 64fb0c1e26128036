"""TensorBoard event files of a run (``log.tensorboard: true``), written with ``torch.utils.tensorboard``.

Per epoch: the losses and metrics, the learning rates, the search diagnostics, softmax(alpha) of every edge as
scalars with one histogram per cell type, and the cell diagram as an image. ``tensorboard --logdir runs`` shows
every run under ``runs``, a benchmark's sub-runs included.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from darts import distributed
from darts.training.trainer import Callback

if TYPE_CHECKING:
    from darts.architecture import Architecture
    from darts.genotype import Genotype
    from darts.training.trainer import Trainer

FOLDER = "tensorboard"
INSTALL = "pip install 'darts-nas[tensorboard]' (or pip install tensorboard)"


def available() -> bool:
    """Whether the tensorboard package, which ``torch.utils.tensorboard`` writes through, is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def tag(metric: str) -> str:
    """The TensorBoard tag of an epoch metric: ``train_loss`` -> ``train/loss``, ``lr`` -> ``lr/weights``,
    a search diagnostic -> ``search/NAME``, anything else -> ``metrics/NAME``."""
    from darts.diagnostics import SCALARS

    if metric == "lr":
        return "lr/weights"
    for split in ("train", "val", "test"):
        if metric.startswith(f"{split}_"):
            return f"{split}/{metric[len(split) + 1:]}"
    if metric in SCALARS or metric.startswith("arch_"):
        return f"search/{metric}"
    if metric.startswith("seconds"):
        return f"time/{metric}"
    return f"metrics/{metric}"


class TensorBoardLogger(Callback):
    """After each epoch, the epoch's figures to ``RUN/tensorboard`` (rank 0 only).

    ``architecture``: a search's, for the alphas' learning rate; ``genotype``: the trained network's, drawn once.
    A resumed run first drops what the killed run wrote after its last checkpoint (``purge_step``), so every
    epoch appears once.
    """

    order = 95  # before the checkpoint: a run killed in between re-runs the epoch, and purge_step drops its first figures

    def __init__(self, run_dir: str | Path, architecture: "Architecture | None" = None,
                 genotype: "Genotype | None" = None) -> None:
        self.path = Path(run_dir) / FOLDER
        self.architecture, self.genotype = architecture, genotype
        self.writer = None

    def before_fit(self, trainer: "Trainer") -> None:
        if not distributed.is_main():
            return
        if not available():
            raise ModuleNotFoundError(f"log.tensorboard needs the tensorboard package: {INSTALL}")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.path), purge_step=trainer.epoch + 1 if trainer.epoch else None)
        if self.genotype is not None and not trainer.epoch:
            self._figure(self.genotype, 0)

    def after_epoch(self, trainer: "Trainer") -> None:
        if self.writer is None:
            return
        metrics = trainer.epoch_metrics
        step = metrics["epoch"]
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag(name), value, step)
        if self.architecture is not None:
            self.writer.add_scalar("lr/alphas", self.architecture.optimizer.param_groups[0]["lr"], step)
        model = trainer.model
        if hasattr(model, "arch_weights") and hasattr(model, "genotype"):
            self._alphas(model, step)
            self._figure(model.genotype(), step)
        self.writer.flush()

    def _alphas(self, model, step: int) -> None:
        names = list(model.primitive_names)
        used = getattr(model, "searched_cell_types", None)
        for cell, weights in model.arch_weights("derive").items():
            if used is not None and cell not in used:
                continue
            weights = weights.detach().cpu()
            for edge, row in enumerate(weights):
                for primitive, value in zip(names, row.tolist()):
                    self.writer.add_scalar(f"alphas/{cell}/edge_{edge:02d}/{primitive}", value, step)
            self.writer.add_histogram(f"alphas/{cell}", weights.flatten(), step)

    def _figure(self, genotype: "Genotype", step: int) -> None:
        from darts.plots import genotype_figure

        self.writer.add_figure("genotype", genotype_figure(genotype), step, close=True)

    def after_fit(self, trainer: "Trainer") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
