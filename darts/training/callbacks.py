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
from darts.strategy import Strategy, normalised
from darts.io import atomic_write_bytes, atomic_write_text
from darts.runs import RunLog
from darts.untrusted import load_torch
from darts.training.trainer import Callback, NonFiniteLossError, make_loader, stream_seed

if TYPE_CHECKING:
    from darts.config import LoopConfig
    from darts.training.trainer import Trainer

CHECKPOINT = "checkpoint.pt"


class ArchitectureStep(Callback):
    """Before each weight step, one alpha step on a batch of the held-out split (never the weight batches).

    The held-out loader is reshuffled each epoch from the run seed and restarts whenever it runs out.
    The first ``warmup_epochs`` epochs make no alpha step (the weights learn alone). Adds ``arch_val_loss``
    (the mean validation loss of the alpha steps) to the epoch's metrics. A validation loss that is not
    finite, or above ``loss_limit``, stops the run.
    """

    order = -10

    def __init__(self, architecture: Architecture, held_out: Dataset, batch_size: int, seed: int = 0,
                 warmup_epochs: int = 0, loss_limit: float | None = None) -> None:
        if len(held_out) == 0:
            raise ValueError("the alpha step's held-out split is empty; give the search more training data")
        self.architecture, self.held_out, self.batch_size, self.seed = architecture, held_out, batch_size, seed
        self.warmup_epochs, self.loss_limit = warmup_epochs, loss_limit
        self._batches: Iterator | None = None
        self._losses: list[float] = []

    def warming_up(self, trainer: "Trainer") -> bool:
        """Whether the current epoch is one of the weight-only warm-up epochs."""
        return trainer.epoch < self.warmup_epochs

    def check(self, val_loss: float, trainer: "Trainer") -> None:
        """Stop the run at a non-finite or exploding validation loss of the alpha step."""
        problem = _loss_problem(val_loss, self.loss_limit)
        if problem:
            raise NonFiniteLossError(f"{problem} validation loss ({val_loss:.4g}) in the alpha step at {trainer.where}")

    def _cycle(self, epoch: int) -> Iterator:
        cycle = 0
        while True:
            yield from make_loader(self.held_out, self.batch_size, stream_seed(self.seed, epoch, 1, cycle), True)
            cycle += 1

    def before_epoch(self, trainer: "Trainer") -> None:
        self._batches, self._losses = self._cycle(trainer.epoch), []

    def before_batch(self, trainer: "Trainer") -> None:
        if self.warming_up(trainer):
            return
        val_loss = self.architecture.step(trainer.batch, trainer.to_device(next(self._batches)))["val_loss"]
        if self.architecture.train_gradient is not None:  # fast mode: the weight step reuses it
            trainer.precomputed, self.architecture.train_gradient = self.architecture.train_gradient, None
        self.check(val_loss, trainer)
        self._losses.append(val_loss)

    def after_epoch(self, trainer: "Trainer") -> None:
        trainer.epoch_metrics["arch_steps"] = len(self._losses)
        if self._losses:
            trainer.epoch_metrics["arch_val_loss"] = sum(self._losses) / len(self._losses)

    def state_dict(self) -> dict:
        return self.architecture.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.architecture.load_state_dict(state)


class StrategySchedule(Callback):
    """Tells the search strategy which epoch begins (its schedules: a temperature, a decaying skip, a ramped
    regulariser) and checkpoints the strategy's own state."""

    order = -20  # before the alpha step of the epoch's first batch

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def before_epoch(self, trainer: "Trainer") -> None:
        self.strategy.start_epoch(trainer.epoch, trainer.epochs)

    def state_dict(self) -> dict:
        return {"strategy": self.strategy.name, "state": self.strategy.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.strategy.load_state_dict(state.get("state", {}))


class GradientClipping(Callback):
    """Clip the norm of the weight gradients (never the alphas': they are not the model's parameters)."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def after_backward(self, trainer: "Trainer") -> None:
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), self.max_norm)


def make_optimizer(parameters, loop: "LoopConfig") -> torch.optim.Optimizer:
    """The weight optimiser that ``loop.optimizer`` names: SGD with momentum, or AdamW (decoupled decay)."""
    if loop.optimizer == "sgd":
        return torch.optim.SGD(parameters, loop.lr, momentum=loop.momentum, weight_decay=loop.weight_decay)
    if loop.optimizer == "adamw":
        return torch.optim.AdamW(parameters, loop.lr, weight_decay=loop.weight_decay)
    raise ValueError(f"unknown optimizer {loop.optimizer!r}; known: sgd, adamw")


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


def _loss_problem(value: float, limit: float | None) -> str | None:
    """Why a loss stops the run ("non-finite", "exploding" above ``limit``), or None if it does not."""
    if not math.isfinite(value):
        return "non-finite"
    if limit is not None and value > limit:
        return f"exploding (above loss_limit {limit:g})"
    return None


class TerminateOnNonFinite(Callback):
    """Stop with :class:`NonFiniteLossError`, naming the epoch and step, at the first NaN or infinite loss,
    or at a finite loss above ``limit`` (a diverging run)."""

    def __init__(self, limit: float | None = None) -> None:
        self.limit = limit

    def after_loss(self, trainer: "Trainer") -> None:
        value = float(trainer.loss.detach())
        problem = _loss_problem(value, self.limit)
        if problem:
            raise NonFiniteLossError(f"{problem} training loss ({value:.4g}) at {trainer.where}")


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
        weights = {name: w.detach().cpu().tolist() for name, w in trainer.model.arch_weights("derive").items()}
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


class SearchDiagnostics(Callback):
    """After each search epoch, how decisive the alphas are and what the genotype holds
    (:mod:`darts.diagnostics`): the summary figures go into the epoch's metrics (so ``metrics.csv``), the
    per-edge figures into a ``diagnostics`` event; :meth:`verdict` judges the search at its end."""

    order = 1  # after the alpha step's metrics, before the metrics are written

    def __init__(self, network, log: RunLog | None = None) -> None:
        from darts.diagnostics import is_mixed, parameter_free
        from darts.plugins import get_registry
        from darts.registry import RegistryError

        self.log = log
        names = list(network.primitive_names)
        try:
            primitives = get_registry().resolve(network.family.name, names)
        except RegistryError:  # a network built from a registry of its own: no primitive counts as free
            primitives = []
        self.free = parameter_free(primitives)
        self.mixed = is_mixed(names, self.free)
        self.records: list[dict] = []
        self.pending: dict | None = None  # the last epoch's record, until its line is written

    def after_epoch(self, trainer: "Trainer") -> None:
        from darts.diagnostics import SCALARS, epoch_diagnostics
        from darts.genotype import Genotype

        model = trainer.model
        used = getattr(model, "searched_cell_types", tuple(model.alphas))  # alphas no cell uses say nothing
        derived = model.arch_weights("derive")  # the strategy's; rows scaled to sum to 1 (sigmoid weights do not)
        weights = {name: normalised(derived[name].detach()) for name in used}
        previous = Genotype.from_dict(self.records[-1]["genotype"]) if self.records else None
        genotype = model.genotype()
        record = epoch_diagnostics(weights, genotype, previous, self.free)
        record.update(epoch=trainer.epoch, arch_steps=trainer.epoch_metrics.get("arch_steps", 0),
                      genotype=genotype.to_dict())
        self.records.append(record)
        trainer.epoch_metrics.update({key: float(record[key]) for key in SCALARS})
        self.pending = record

    def before_epoch(self, trainer: "Trainer") -> None:
        self._write_pending()

    def after_fit(self, trainer: "Trainer") -> None:
        self._write_pending()

    def _write_pending(self) -> None:
        """The last epoch's line, written after the epoch's own line (which the metrics logger writes last)."""
        record, self.pending = self.pending, None
        if self.log is not None and record is not None:
            summary = {key: value for key, value in record.items() if key != "genotype"}
            self.log.event("diagnostics", f"  alphas: {record['decisive_edges']:.0%} of edges decisive, median top "
                           f"weight {record['alpha_top_median']:.3f} (uniform {record['uniform']:.3f}); "
                           f"parameter-free {record['parameter_free_share']:.0%} of the genotype; "
                           f"{record['genotype_changes']} genes changed", **summary)

    def verdict(self, search, chosen=None):
        """The search's :class:`~darts.diagnostics.Verdict` from the epochs recorded so far; ``chosen``: the
        genotype selected otherwise than by alpha, judged for a collapse onto parameter-free primitives."""
        from darts.diagnostics import free_share, verdict

        return verdict(self.records, search, self.mixed, None if chosen is None else free_share(chosen, self.free))

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, state: dict) -> None:
        self.records = list(state.get("records", []))


class MetricsLogger(Callback):
    """Rewrites ``metrics.csv`` from the history after each epoch and logs the epoch's figures.

    It runs after the checkpoint, so that metrics.csv never shows an epoch that no checkpoint holds (a full
    disk that stops the checkpoint stops the run before this)."""

    order = 110

    def __init__(self, run_dir: str | Path, log: RunLog) -> None:
        self.run_dir, self.log = Path(run_dir), log

    def after_epoch(self, trainer: "Trainer") -> None:
        import pandas as pd

        if distributed.is_main():
            frame = pd.DataFrame(trainer.history)
            atomic_write_text(self.run_dir / "metrics.csv", frame.to_csv(index=False, float_format="%.6g"))
        m = trainer.epoch_metrics
        from darts.diagnostics import SCALARS

        hidden = ("epoch", "seconds_per_step", "arch_steps", *SCALARS)  # the diagnostics have a line of their own
        shown = [k for k in m if k not in hidden and not k.startswith(("train_", "val_"))
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
    return load_torch(path, "checkpoint")


def _write_lines(path: Path, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
