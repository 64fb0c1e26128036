"""The built-in callbacks: the alpha step, clipping, schedule, NaN guard, early stopping, genotype tracking,
metrics logging, progress bars and checkpoints. Each has one job; a run composes the ones it needs."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch
from torch.utils.data import Dataset

from darts import distributed
from darts.architecture import Architecture
from darts.io import atomic_write_bytes, atomic_write_text
from darts.runs import RunLog
from darts.training.trainer import Callback, NonFiniteLossError, make_loader, stream_seed

if TYPE_CHECKING:
    from darts.training.trainer import Trainer

CHECKPOINT = "checkpoint.pt"


class ArchitectureStep(Callback):
    """Before each weight step, one alpha step on a batch of the held-out split (never the weight batches).

    The held-out loader is reshuffled each epoch from the run seed and restarts whenever it runs out.
    Adds ``arch_val_loss`` (the mean validation loss of the alpha steps) to the epoch's metrics.
    """

    order = -10

    def __init__(self, architecture: Architecture, held_out: Dataset, batch_size: int, seed: int = 0) -> None:
        if len(held_out) == 0:
            raise ValueError("the alpha step's held-out split is empty; give the search more training data")
        self.architecture, self.held_out, self.batch_size, self.seed = architecture, held_out, batch_size, seed
        self._batches: Iterator | None = None
        self._losses: list[float] = []

    def _cycle(self, epoch: int) -> Iterator:
        cycle = 0
        while True:
            yield from make_loader(self.held_out, self.batch_size, stream_seed(self.seed, epoch, 1, cycle), True)
            cycle += 1

    def before_epoch(self, trainer: "Trainer") -> None:
        self._batches, self._losses = self._cycle(trainer.epoch), []

    def before_batch(self, trainer: "Trainer") -> None:
        val_loss = self.architecture.step(trainer.batch, next(self._batches))["val_loss"]
        if self.architecture.train_gradient is not None:  # fast mode: the weight step reuses it
            trainer.precomputed, self.architecture.train_gradient = self.architecture.train_gradient, None
        if not math.isfinite(val_loss):
            raise NonFiniteLossError(f"non-finite validation loss ({val_loss}) in the alpha step at {trainer.where}")
        self._losses.append(val_loss)

    def after_epoch(self, trainer: "Trainer") -> None:
        if self._losses:
            trainer.epoch_metrics["arch_val_loss"] = sum(self._losses) / len(self._losses)

    def state_dict(self) -> dict:
        return self.architecture.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.architecture.load_state_dict(state)


class GradientClipping(Callback):
    """Clip the norm of the weight gradients (never the alphas': they are not the model's parameters)."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def after_backward(self, trainer: "Trainer") -> None:
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), self.max_norm)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, epochs: int, lr_min: float = 0.0,
                   gamma: float = 0.97) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-epoch schedule: ``cosine`` (to ``lr_min`` over ``epochs``), ``exponential`` (x gamma) or ``constant``."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs, eta_min=lr_min)
    if schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    if schedule == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    raise ValueError(f"unknown schedule {schedule!r}; known: cosine, exponential, constant")


class LRSchedule(Callback):
    """Step a learning-rate scheduler once per epoch (after the epoch, never per batch)."""

    order = -5

    def __init__(self, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        self.scheduler = scheduler

    def after_epoch(self, trainer: "Trainer") -> None:
        self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scheduler.load_state_dict(state)


class AuxiliaryLoss(Callback):
    """Add ``weight`` times the loss of the network's auxiliary head (``model.auxiliary_output``) in training."""

    order = -1  # before the non-finite check, which then sees the whole loss

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def after_loss(self, trainer: "Trainer") -> None:
        auxiliary = getattr(trainer.model, "auxiliary_output", None)
        if auxiliary is not None:
            trainer.loss = trainer.loss + self.weight * trainer.loss_fn(auxiliary, trainer.batch[1])


class DropPathSchedule(Callback):
    """Drop path ramped linearly: probability ``max_prob * epoch / epochs`` in each epoch, as DARTS trains."""

    def __init__(self, max_prob: float) -> None:
        self.max_prob = max_prob

    def before_epoch(self, trainer: "Trainer") -> None:
        trainer.model.drop_path_prob = self.max_prob * trainer.epoch / trainer.epochs


class TerminateOnNonFinite(Callback):
    """Stop with :class:`NonFiniteLossError`, naming the epoch and step, at the first NaN or infinite loss."""

    def after_loss(self, trainer: "Trainer") -> None:
        value = float(trainer.loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite training loss ({value}) at {trainer.where}")


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs in which the trainer's monitored metric did not improve."""

    order = 5

    def __init__(self, patience: int, log: RunLog | None = None) -> None:
        self.patience, self.log, self.wait = patience, log, 0

    def after_epoch(self, trainer: "Trainer") -> None:
        self.wait = 0 if trainer.improved else self.wait + 1
        if self.wait >= self.patience:
            trainer.stop = True
            if self.log:
                self.log.event("early_stop", f"early stopping: {trainer.monitor} has not improved for "
                               f"{self.wait} epochs (best {trainer.best['value']:.4g} at epoch "
                               f"{trainer.best['epoch']})", epoch=trainer.epoch, best=trainer.best)

    def state_dict(self) -> dict:
        return {"wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.wait = state.get("wait", 0)


class GenotypeTracker(Callback):
    """After each epoch, the supernet's genotype and softmax(alpha); the best genotype by the monitor.

    Writes ``genotypes.jsonl`` and ``alphas.jsonl`` (one line per epoch) and ``genotype_best.json``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.genotypes: list[dict] = []
        self.alphas: list[dict] = []
        self.best: dict | None = None

    def after_epoch(self, trainer: "Trainer") -> None:
        genotype = trainer.model.genotype()
        self.genotypes.append({"epoch": trainer.epoch, "genotype": genotype.to_dict()})
        weights = {name: w.detach().cpu().tolist() for name, w in trainer.model.arch_weights().items()}
        self.alphas.append({"epoch": trainer.epoch, "primitives": list(genotype.primitives), "weights": weights})
        if trainer.improved:
            self.best = {"epoch": trainer.epoch, "genotype": genotype.to_dict()}
        if distributed.is_main():
            if trainer.improved:
                atomic_write_text(self.run_dir / "genotype_best.json", json.dumps(self.best["genotype"], indent=2) + "\n")
            _write_lines(self.run_dir / "genotypes.jsonl", self.genotypes)
            _write_lines(self.run_dir / "alphas.jsonl", self.alphas)

    def state_dict(self) -> dict:
        return {"genotypes": self.genotypes, "alphas": self.alphas, "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.genotypes, self.alphas = list(state.get("genotypes", [])), list(state.get("alphas", []))
        self.best = state.get("best")


class MetricsLogger(Callback):
    """Rewrites ``metrics.csv`` from the history after each epoch and logs the epoch's figures."""

    order = 10

    def __init__(self, run_dir: str | Path, log: RunLog) -> None:
        self.run_dir, self.log = Path(run_dir), log

    def after_epoch(self, trainer: "Trainer") -> None:
        import pandas as pd

        if distributed.is_main():
            frame = pd.DataFrame(trainer.history)
            atomic_write_text(self.run_dir / "metrics.csv", frame.to_csv(index=False, float_format="%.6g"))
        m = trainer.epoch_metrics
        shown = [k for k in m if k not in ("epoch", "seconds_per_step") and not k.startswith(("train_", "val_"))
                 or k in ("train_loss", "val_loss", trainer.monitor)]
        summary = ", ".join(f"{k} {m[k]:.4g}" for k in shown if isinstance(m[k], float))
        star = " *" if trainer.improved else ""
        self.log.event("epoch", f"epoch {m['epoch']}/{trainer.epochs}: {summary}{star}", metrics=m)


class ProgressBar(Callback):
    """Rich progress bars: epochs, and the batches of the current epoch with the running loss and accuracy."""

    order = 20

    def __init__(self, console, description: str = "train") -> None:
        self.console, self.description = console, description
        self.progress = None

    def before_fit(self, trainer: "Trainer") -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[figures]}"),
                                 console=self.console, transient=True)
        self.progress.start()
        self.epochs = self.progress.add_task(self.description, total=trainer.epochs, completed=trainer.epoch,
                                             figures="")
        self.batches = self.progress.add_task("  batches", total=1, figures="")

    def before_epoch(self, trainer: "Trainer") -> None:
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        self.progress.reset(self.batches, total=trainer.batches, description=f"  epoch {trainer.epoch + 1}", figures="")

    def after_batch(self, trainer: "Trainer") -> None:
        _, targets = trainer.batch
        self.loss_sum += float(trainer.loss.detach())
        figures = f"loss {self.loss_sum / (trainer.batch_index + 1):.4f}"
        outputs = trainer.outputs if isinstance(trainer.outputs, dict) else {"": trainer.outputs}
        targets = targets if isinstance(targets, dict) else {"": targets}
        for name, output in outputs.items():  # classification heads: (batch, classes) logits
            if isinstance(output, torch.Tensor) and output.dim() == 2 and not targets[name].is_floating_point():
                self.correct += int((output.argmax(1) == targets[name]).sum())
                self.seen += len(targets[name])
        if self.seen:
            figures += f"  acc {self.correct / self.seen:.3f}"
        self.progress.update(self.batches, advance=1, figures=figures)

    def after_epoch(self, trainer: "Trainer") -> None:
        value = trainer.epoch_metrics.get(trainer.monitor)
        self.progress.update(self.epochs, advance=1, figures=f"{trainer.monitor} {value:.4f}" if value is not None else "")

    def after_fit(self, trainer: "Trainer") -> None:
        if self.progress is not None:
            self.progress.stop()


class Checkpoint(Callback):
    """After each epoch (last of all callbacks), the whole training state to ``checkpoint.pt``, atomically."""

    order = 100

    def __init__(self, run_dir: str | Path, log: RunLog | None = None) -> None:
        self.path, self.log = Path(run_dir) / CHECKPOINT, log

    def after_epoch(self, trainer: "Trainer") -> None:
        if not distributed.is_main():
            return
        buffer = io.BytesIO()
        torch.save(trainer.state_dict(), buffer)
        atomic_write_bytes(self.path, buffer.getvalue())
        if self.log:
            self.log.event("checkpoint", epoch=trainer.epoch, step=trainer.global_step, path=str(self.path))


def load_checkpoint(run_dir: str | Path) -> dict:
    """The checkpoint of a run directory; a clear error if there is none."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the run has no finished epoch to resume from")
    return torch.load(path, weights_only=True)


def _write_lines(path: Path, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
