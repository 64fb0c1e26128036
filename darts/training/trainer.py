"""A readable training loop; everything optional happens in callbacks (the fastai way).

One epoch::

    before_epoch
    for each batch:  before_batch -> forward, loss -> after_loss -> backward -> after_backward
                     -> optimiser step -> after_step -> gradients dropped -> after_batch
    before_validate -> validation -> after_validate -> after_epoch

wrapped in ``before_fit`` / ``after_fit``. A callback sees the trainer and may read or change its state
(``batch``, ``outputs``, ``loss``, ``epoch_metrics``, ``stop``...). Data order comes from generators seeded
by (seed, epoch, stream), never from the global random state, so that a run resumed from a checkpoint
sees exactly the batches the uninterrupted run saw; the global random state (dropout, initialisation) is
saved in the checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from darts import distributed
from darts.architecture import detached
from darts.device import FP32, Precision, to_device
from darts.distributed import shard
from darts.training.objective import MetricAccumulator, TaskLoss, higher_is_better

#: epoch figures that measure time, not learning (they differ between identical runs)
TIMING = ("seconds", "seconds_per_step")

HOOKS = ("before_fit", "before_epoch", "before_batch", "after_loss", "after_backward", "after_step",
         "after_batch", "before_validate", "after_validate", "after_epoch", "after_fit")


class Callback:
    """Base of callbacks: override any hook in :data:`HOOKS`; lower ``order`` runs first.

    A callback with state to resume returns it from :meth:`state_dict` (saved in checkpoints).
    """

    order: int = 0

    def before_fit(self, trainer: "Trainer") -> None:
        """Once, before the first epoch to run (after a resume, the first one left)."""

    def before_epoch(self, trainer: "Trainer") -> None:
        """At the start of every epoch, before its first batch (``trainer.batches`` is known)."""

    def before_batch(self, trainer: "Trainer") -> None:
        """Before each batch's forward pass; ``trainer.batch`` holds the batch, on the device."""

    def after_loss(self, trainer: "Trainer") -> None:
        """After the loss (``trainer.loss``, ``trainer.outputs``), before the backward pass; may change the loss."""

    def after_backward(self, trainer: "Trainer") -> None:
        """After the backward pass (gradients unscaled), before the optimiser's step: clip gradients here."""

    def after_step(self, trainer: "Trainer") -> None:
        """After the optimiser's step, while the weights' gradients are still there."""

    def after_batch(self, trainer: "Trainer") -> None:
        """At the end of every batch (metrics updated, ``trainer.global_step`` counted)."""

    def before_validate(self, trainer: "Trainer") -> None:
        """Before the epoch's validation pass (only when there is a validation split)."""

    def after_validate(self, trainer: "Trainer") -> None:
        """After validation, with ``trainer.epoch_metrics`` and ``trainer.improved`` (the best so far)."""

    def after_epoch(self, trainer: "Trainer") -> None:
        """At the end of every epoch, after its row of ``trainer.history``; set ``trainer.stop`` to end the run."""

    def after_fit(self, trainer: "Trainer") -> None:
        """Once at the end of the run, also when it stops on an error."""

    def state_dict(self) -> dict:
        """The callback's state to save in checkpoints (none by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned, on resume."""


class NonFiniteLossError(RuntimeError):
    """A NaN or infinite loss; the message names the epoch and the step."""


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """In eval mode, normalise with each batch's statistics instead of the running ones (left untouched).

    A supernet's weights move every step, so its running statistics lag behind them; the alpha step sees
    batch statistics, and so does a search's validation.
    """
    saved = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            saved.append((module, module.running_mean, module.running_var))
            module.running_mean = module.running_var = None
    try:
        yield
    finally:
        for module, mean, var in saved:
            module.running_mean, module.running_var = mean, var


def make_loader(data: Dataset, batch_size: int, seed: int | None = None, shuffle: bool = False,
                pin: bool = False) -> DataLoader:
    """A loader whose order depends on ``seed`` only; shuffled loaders drop a last incomplete batch.

    Under torch.distributed a shuffled loader reads this rank's share of the shuffled order (the same
    order on every rank), so ``batch_size`` is per rank; an unshuffled one reads everything. ``pin``: batches
    in pinned memory, for a GPU (copied while the GPU computes).
    """
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    if not shuffle or not distributed.active():
        return DataLoader(data, batch_size, shuffle=shuffle, drop_last=shuffle and len(data) > batch_size,
                          generator=generator, pin_memory=pin)
    # the order a single process's shuffled loader reads (its iterator draws a seed, then the permutation)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = shard(torch.randperm(len(data), generator=generator).tolist())
    return DataLoader(data, batch_size, sampler=order, drop_last=len(order) > batch_size, pin_memory=pin)


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model(*inputs)`` for a tuple of inputs (e.g. tokens and a hidden state), else ``model(inputs)``."""
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def stream_seed(seed: int, epoch: int, stream: int, cycle: int = 0) -> int:
    """A distinct, reproducible seed for each (run seed, epoch, data stream, pass through the stream)."""
    return hash((seed, epoch, stream, cycle)) % 2**62


class Trainer:
    """Trains ``model`` on ``train_data``, validating on ``valid_data`` after each epoch.

    ``monitor`` names the metric that decides the best epoch (``val_accuracy``, ``val_loss``...; by
    default ``val_loss``, or ``train_loss`` without validation data);
    ``epoch_metrics`` of every finished epoch are kept in ``history``. ``batch_norm_statistics``:
    ``"running"`` (the usual eval mode) or ``"batch"`` (see :func:`batch_statistics`; for supernets).
    ``precision`` (fp32 by default) is the autocast of every forward pass and, for fp16, the gradient scaler
    of the weight step. Batches move to the device of the model's first parameter.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss: TaskLoss, train_data: Dataset,
                 batch_size: int, epochs: int, valid_data: Dataset | None = None,
                 callbacks: Sequence[Callback] = (), seed: int = 0, monitor: str | None = None,
                 batch_norm_statistics: str = "running", precision: Precision = FP32) -> None:
        if batch_norm_statistics not in ("running", "batch"):
            raise ValueError(f"batch_norm_statistics must be 'running' or 'batch', got {batch_norm_statistics!r}")
        self.batch_norm_statistics = batch_norm_statistics
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss
        self.train_data, self.valid_data = train_data, valid_data
        self.batch_size, self.epochs, self.seed = batch_size, epochs, seed
        self.callbacks = sorted(callbacks, key=lambda c: c.order)
        self.monitor = monitor or ("val_loss" if valid_data is not None else "train_loss")
        self.epoch = 0            # epochs completed
        self.global_step = 0      # weight steps completed
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.improved = False
        self.stop = False
        self.batch: Any = None
        self.outputs: Any = None
        #: (weights, gradients, loss, outputs) of the current batch computed by a callback (e.g. the alpha
        #: step in fast mode); the trainer then skips its own forward and backward pass
        self.precomputed: tuple | None = None
        self.loss: torch.Tensor | None = None
        self.batch_index = 0
        self.batches = 0
        self.epoch_metrics: dict[str, Any] = {}
        self.metrics = self.new_metrics()
        self.forward_model = _distributed(model) if distributed.active() else model
        first = next(model.parameters(), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.precision = precision
        #: fp16's gradient scaler (None in fp32 and bf16); saved in checkpoints
        self.scaler = precision.scaler()

    # --- the loop --------------------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Run the remaining epochs (all of them, or those after a restored checkpoint); return the history."""
        self.stop = False
        self.call("before_fit")
        try:
            while self.epoch < self.epochs and not self.stop:
                self.one_epoch()
        finally:
            self.call("after_fit")
        return self.history

    def one_epoch(self) -> None:
        """Train one epoch, validate, record its metrics, calling the callbacks' hooks on the way."""
        start = time.perf_counter()
        loader = self.train_batches()
        self.batches = len(loader)
        lr = self.optimizer.param_groups[0]["lr"]
        self.call("before_epoch")
        self.model.train()
        self.metrics.reset()
        for self.batch_index, batch in enumerate(loader):
            self.batch = self.to_device(batch)
            self.call("before_batch")
            inputs, targets = self.batch
            self.optimizer.zero_grad(set_to_none=True)
            scaled = False
            if self.precomputed is not None:  # a callback computed this batch's gradient already (unscaled)
                weights, grads, self.loss, self.outputs = self.precomputed
                self.precomputed = None
                for weight, grad in zip(weights, grads):
                    weight.grad = grad
                self.call("after_loss")
            else:
                with self.precision.autocast():
                    self.outputs = call_model(self.forward_model, inputs)
                    self.loss = self.loss_fn(self.outputs, targets)
                self.call("after_loss")
                scaled = self.scaler is not None
                (self.scaler.scale(self.loss) if scaled else self.loss).backward()
                if scaled:  # callbacks (gradient clipping) see the true gradients
                    self.scaler.unscale_(self.optimizer)
                # drop the spent graph now: kept until the next batch's passes, its small nodes would stay
                # scattered over the memory those passes could reuse
                self.loss, self.outputs = self.loss.detach(), detached(self.outputs)
            self.call("after_backward")
            if scaled:  # skips the step if a gradient overflowed float16, and adapts the scale
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.call("after_step")
            # dropped now, not at the next batch: kept through its architecture step, these hundreds of small
            # tensors would stay scattered over the memory its passes free, and the heap would grow
            self.optimizer.zero_grad(set_to_none=True)
            self.metrics.update(self.outputs, targets)
            self.global_step += 1
            self.call("after_batch")
        self.epoch += 1
        self.epoch_metrics = {"epoch": self.epoch, **self.metrics.compute("train_")}
        if self.valid_data is not None and len(self.valid_data):
            self.call("before_validate")
            self.epoch_metrics.update(self.evaluate(self.valid_data, "val_"))
        seconds = time.perf_counter() - start
        self.epoch_metrics.update(lr=lr, seconds=round(seconds, 3), seconds_per_step=seconds / max(1, self.batches))
        self._track_best()
        if self.valid_data is not None and len(self.valid_data):
            self.call("after_validate")  # sees whether the validated model is the best so far
        self.history.append(self.epoch_metrics)
        self.call("after_epoch")

    def train_batches(self):
        """This epoch's training batches (a sized iterable), in an order that depends on (seed, epoch) only."""
        return make_loader(self.train_data, self.batch_size, stream_seed(self.seed, self.epoch, 0), shuffle=True,
                           pin=self.device.type == "cuda")

    def to_device(self, batch: Any) -> Any:
        """``batch`` on the model's device."""
        return batch if self.device.type == "cpu" else to_device(batch, self.device)

    def new_metrics(self) -> MetricAccumulator:
        """A fresh accumulator of the task's metrics."""
        return MetricAccumulator(self.loss_fn)

    def evaluate(self, data: Dataset, prefix: str = "", batch_size: int | None = None) -> dict[str, float]:
        """The metrics of the model on ``data`` in eval mode (no gradients, no change to any statistic), in
        batches of ``batch_size`` (the trainer's by default)."""
        accumulator = self.new_metrics()
        was_training = self.model.training
        self.model.eval()
        batch_size = batch_size or self.batch_size
        use_batch = batch_statistics(self.model) if self.batch_norm_statistics == "batch" else contextlib.nullcontext()
        if self.batch_norm_statistics == "batch":
            while len(data) > 1 and len(data) % batch_size == 1:  # batch statistics need two examples or more
                batch_size += 1
        with torch.no_grad(), use_batch, self.precision.autocast():
            for inputs, targets in map(self.to_device, make_loader(data, batch_size, pin=self.device.type == "cuda")):
                accumulator.update(call_model(self.model, inputs), targets)
        self.model.train(was_training)
        return accumulator.compute(prefix)

    def _track_best(self) -> None:
        if self.monitor not in self.epoch_metrics:
            known = ", ".join(k for k in self.epoch_metrics if k not in ("epoch", "lr", *TIMING))
            raise ValueError(f"monitor {self.monitor!r} is not a metric of this run; known: {known}")
        value = self.epoch_metrics[self.monitor]
        best = None if self.best is None else self.best["value"]
        better = (value > best if higher_is_better(self.monitor) else value < best) if best is not None else True
        self.improved = bool(better and math.isfinite(value))
        if self.improved:
            self.best = {"epoch": self.epoch, "value": value}

    def call(self, hook: str) -> None:
        """Call ``hook`` (one of :data:`HOOKS`) on every callback, lower ``order`` first."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self)

    @property
    def where(self) -> str:
        """``epoch E, step S`` of the batch in progress (1-based), for messages."""
        return f"epoch {self.epoch + 1}, step {self.batch_index + 1} of {self.batches}"

    # --- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: model, optimiser, scaler, callbacks, history and random state."""
        return {"epoch": self.epoch, "global_step": self.global_step, "history": self.history, "best": self.best,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "callbacks": {key: callback.state_dict() for key, callback in self._keyed_callbacks()},
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, so that :meth:`fit` goes on where the saved run stopped."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for key, callback in self._keyed_callbacks():
            callback.load_state_dict(state["callbacks"].get(key, {}))
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.history, self.best = list(state["history"]), state["best"]
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)

    def _keyed_callbacks(self) -> Iterator[tuple[str, Callback]]:
        seen: dict[str, int] = {}
        for callback in self.callbacks:
            name = type(callback).__name__
            seen[name] = seen.get(name, 0) + 1
            yield (name if seen[name] == 1 else f"{name}{seen[name]}"), callback


def _distributed(model: nn.Module) -> nn.Module:
    """``model`` under DistributedDataParallel, its alphas (if any) left out of DDP's gradient reducer."""
    from torch.nn.parallel import DistributedDataParallel

    model._ddp_params_and_buffers_to_ignore = [  # the alphas, and PC-DARTS' edge alphas
        f"{prefix}.{name}" for prefix in ("alphas", "edge_alphas") if isinstance(getattr(model, prefix, None), nn.Module)
        for name, _ in getattr(model, prefix).named_parameters()]
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
