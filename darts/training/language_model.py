"""Training a language model the AWD-LSTM way, its tricks held by callbacks (as the fastai reimplementation).

:class:`LanguageModelTrainer` reads a token stream in windows of a randomised BPTT length and validates
by perplexity with the hidden state carried through the whole stream. The callbacks: :class:`HiddenState`
(initialise the hidden state each epoch, carry it detached from batch to batch), :class:`BPTTLearningRate`
(the learning rate scaled to the window's length), :class:`ActivationRegularization` (AR and TAR),
:class:`AveragedSGD` (the non-monotone switch to averaged weights, NT-ASGD), :class:`KeepBest` (the weights
of the best validation) and :class:`LanguageModelArchitectureStep` (the alpha step on windows of the
validation stream, with a hidden state of its own).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darts.architecture import Architecture
from darts.data.corpus import batchify
from darts.device import FP32, Precision
from darts.training.callbacks import ArchitectureStep
from darts.training.trainer import Callback, Trainer, batch_statistics, stream_seed

if TYPE_CHECKING:
    from darts.runs import RunLog


class LanguageModelLoss:
    """Mean cross-entropy of next-token ``logits`` (a :class:`LanguageModelOutput`) against the targets."""

    def __call__(self, output, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.logits.reshape(-1, output.logits.shape[-1]), targets.reshape(-1))


class PerplexityMeter:
    """Token-weighted mean cross-entropy over an epoch: ``loss`` (nats per token) and ``ppl`` = exp(loss)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._total, self._tokens = 0.0, 0

    def update(self, output, targets: torch.Tensor) -> None:
        with torch.no_grad():
            logits = output.logits.detach()
            self._total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                 reduction="sum"))
        self._tokens += targets.numel()

    def compute(self, prefix: str = "") -> dict[str, float]:
        if not self._tokens:
            return {}
        loss = self._total / self._tokens
        return {f"{prefix}loss": loss, f"{prefix}ppl": math.exp(min(loss, 700.0))}


def bptt_windows(length: int, bptt: int, generator: np.random.Generator | None = None,
                 max_length: int | None = None) -> list[tuple[int, int]]:
    """(start, length) of the windows that cover a stream of ``length`` positions (the last one has no target).

    With a ``generator`` the lengths are AWD-LSTM's: ``bptt`` with probability 0.95, else ``bptt / 2``, plus
    normal noise of standard deviation 5, at least 5 and at most ``max_length``; without, ``bptt`` each."""
    windows, start = [], 0
    while start < length - 1:
        size = bptt
        if generator is not None:
            mean = bptt if generator.random() < 0.95 else bptt / 2
            size = max(5, int(generator.normal(mean, 5)))
            size = min(size, max_length or size)
        size = min(size, length - 1 - start)
        windows.append((start, size))
        start += size
    return windows


def window(rows: torch.Tensor, start: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``rows[:, start:start+size]`` and their next tokens (targets)."""
    size = min(size, rows.shape[1] - 1 - start)
    return rows[:, start:start + size], rows[:, start + 1:start + 1 + size]


class _Windows:
    """The batches of one epoch: windows of the batchified stream (a sized iterable)."""

    def __init__(self, trainer: "LanguageModelTrainer", windows: list[tuple[int, int]]) -> None:
        self.trainer, self.windows = trainer, windows

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self):
        for start, size in self.windows:
            self.trainer.window = (start, size)
            yield window(self.trainer.train_rows, start, size)


class LanguageModelTrainer(Trainer):
    """A :class:`Trainer` for language models: ``train_data`` and ``valid_data`` are token streams (1-D).

    Training reads ``batch_size`` parallel rows of the stream in windows of random length around ``bptt``
    (:func:`bptt_windows`, seeded by (seed, epoch)); validation and :meth:`evaluate` read ``eval_batch_size``
    rows in windows of ``bptt``, carrying the hidden state through, and report ``loss`` and ``ppl``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data: torch.Tensor,
                 batch_size: int, epochs: int, valid_data: torch.Tensor | None = None,
                 callbacks: Sequence[Callback] = (), seed: int = 0, monitor: str | None = None, bptt: int = 35,
                 max_bptt: int | None = None, variable_bptt: bool = True, eval_batch_size: int = 10,
                 batch_norm_statistics: str = "running", precision: Precision = FP32) -> None:
        super().__init__(model, optimizer, LanguageModelLoss(), train_data, batch_size, epochs, valid_data,
                         callbacks, seed, monitor or ("val_ppl" if valid_data is not None else "train_ppl"),
                         batch_norm_statistics, precision)
        self.train_rows = batchify(train_data, batch_size)
        self.bptt, self.max_bptt, self.variable_bptt = bptt, max_bptt or bptt + 20, variable_bptt
        self.eval_batch_size = eval_batch_size
        self.window = (0, bptt)  # (start, length) of the batch in progress

    def new_metrics(self) -> PerplexityMeter:
        return PerplexityMeter()

    def train_batches(self) -> _Windows:
        generator = np.random.default_rng(stream_seed(self.seed, self.epoch, 0)) if self.variable_bptt else None
        return _Windows(self, bptt_windows(self.train_rows.shape[1], self.bptt, generator, self.max_bptt))

    def evaluate(self, data: torch.Tensor, prefix: str = "", batch_size: int | None = None) -> dict[str, float]:
        """Loss and perplexity on the stream ``data``, read in order with the hidden state carried through."""
        rows = batchify(data, batch_size or self.eval_batch_size)
        meter = PerplexityMeter()
        was_training = self.model.training
        self.model.eval()
        statistics = batch_statistics(self.model) if self.batch_norm_statistics == "batch" else nullcontext()
        hidden = None
        with torch.no_grad(), statistics, self.precision.autocast():
            for start, size in bptt_windows(rows.shape[1], self.bptt):
                inputs, targets = self.to_device(window(rows, start, size))
                output = self.model(inputs, hidden)
                meter.update(output, targets)
                hidden = output.hidden
        self.model.train(was_training)
        return meter.compute(prefix)


# --- callbacks -------------------------------------------------------------------------------------------
class HiddenState(Callback):
    """The hidden state: zeros at the start of each epoch, then carried from batch to batch, detached (the
    gradient stops at the window's start). Turns a batch ``(tokens, targets)`` into ``((tokens, hidden), targets)``."""

    order = -30

    def before_epoch(self, trainer: Trainer) -> None:
        self.hidden = None

    def before_batch(self, trainer: Trainer) -> None:
        tokens, targets = trainer.batch
        hidden = self.hidden if self.hidden is not None else trainer.model.init_hidden(tokens.shape[0])
        trainer.batch = ((tokens, hidden), targets)

    def after_batch(self, trainer: Trainer) -> None:
        self.hidden = trainer.outputs.hidden.detach()


class BPTTLearningRate(Callback):
    """For each batch, the learning rate scaled by window length / ``bptt`` (a short window takes a short
    step), restored after the weight step."""

    order = -25

    def __init__(self, bptt: int) -> None:
        self.bptt = bptt
        self._saved: list[float] = []

    def before_batch(self, trainer: Trainer) -> None:
        size = trainer.batch[1].shape[1]
        self._saved = [group["lr"] for group in trainer.optimizer.param_groups]
        for group in trainer.optimizer.param_groups:
            group["lr"] = group["lr"] * size / self.bptt

    def after_step(self, trainer: Trainer) -> None:
        for group, lr in zip(trainer.optimizer.param_groups, self._saved):
            group["lr"] = lr


class ActivationRegularization(Callback):
    """Add AR, ``ar * mean(dropped output ** 2)``, and TAR, ``tar * mean((h_t - h_{t-1}) ** 2)`` of the raw
    outputs, to the training loss (Merity et al. 2017); the reported loss and perplexity leave them out."""

    order = -1

    def __init__(self, ar: float = 0.0, tar: float = 0.0) -> None:
        self.ar, self.tar = ar, tar

    def after_loss(self, trainer: Trainer) -> None:
        output = trainer.outputs
        if self.ar:
            trainer.loss = trainer.loss + self.ar * output.dropped.pow(2).mean()
        if self.tar and output.raw.shape[1] > 1:
            trainer.loss = trainer.loss + self.tar * (output.raw[:, 1:] - output.raw[:, :-1]).pow(2).mean()


class AveragedSGD(Callback):
    """Non-monotonically triggered averaging of the weights (NT-ASGD, Merity et al. 2017).

    After each validation: if there are more than ``nonmono`` earlier validation losses and this one is
    worse than the best of all but the last ``nonmono`` of them, switch. From the next weight step on, the
    callback keeps the running mean of the weights after every step (Polyak averaging: with SGD without
    momentum this is ASGD with t0 = 0 and lambda = 0). After the switch, validation (and so the best
    weights of :class:`KeepBest`) and the final model use the averaged weights; checkpoints hold both the
    averaged and the raw weights, so a run resumes exactly. Adds ``averaged`` (1 when validation used the
    averaged weights) to the epoch's metrics.
    """

    order = -20  # after_epoch: the raw weights are back before anything else (checkpoints) sees the model

    def __init__(self, nonmono: int = 5, log: "RunLog | None" = None) -> None:
        self.nonmono, self.log = nonmono, log
        self.history: list[float] = []
        self.switched_at: int | None = None   # epoch after which averaging started
        self.count = 0
        self.average: list[torch.Tensor] | None = None
        self._raw: list[torch.Tensor] | None = None

    @property
    def switched(self) -> bool:
        return self.switched_at is not None

    def after_step(self, trainer: Trainer) -> None:
        if not self.switched:
            return
        self.count += 1
        with torch.no_grad():
            if self.average is None:
                self.average = [p.detach().clone() for p in trainer.model.parameters()]
            else:
                for mean, p in zip(self.average, trainer.model.parameters()):
                    mean.add_(p.detach() - mean, alpha=1.0 / self.count)

    def _swap_in(self, model: nn.Module) -> None:
        if self.average is None:
            return
        with torch.no_grad():
            self._raw = [p.detach().clone() for p in model.parameters()]
            for p, mean in zip(model.parameters(), self.average):
                p.copy_(mean)

    def before_validate(self, trainer: Trainer) -> None:
        self._swap_in(trainer.model)
        trainer.epoch_metrics["averaged"] = float(self._raw is not None)

    def after_epoch(self, trainer: Trainer) -> None:
        if self._raw is not None:  # the weights validation saw stay in place until here (KeepBest copies them)
            with torch.no_grad():
                for p, raw in zip(trainer.model.parameters(), self._raw):
                    p.copy_(raw)
            self._raw = None
        loss = trainer.epoch_metrics.get("val_loss")
        if self.switched or loss is None:
            return
        if len(self.history) > self.nonmono and loss > min(self.history[:-self.nonmono]):
            self.switched_at = trainer.epoch
            if self.log:
                self.log.event("asgd", f"switching to averaged SGD after epoch {trainer.epoch}: val_loss {loss:.4f} "
                               f"is worse than {min(self.history[:-self.nonmono]):.4f}, the best before the last "
                               f"{self.nonmono} epochs", epoch=trainer.epoch)
        self.history.append(loss)

    def after_fit(self, trainer: Trainer) -> None:
        """The final model is the averaged one."""
        self._swap_in(trainer.model)
        self._raw = None

    def state_dict(self) -> dict:
        return {"history": self.history, "switched_at": self.switched_at, "count": self.count,
                "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.history, self.switched_at = list(state["history"]), state["switched_at"]
            self.count, self.average = state["count"], state["average"]


class KeepBest(Callback):
    """Keep the weights of the best validation (the averaged ones under NT-ASGD) and end the run with them,
    as AWD-LSTM and DARTS test their best model."""

    order = 0  # after_fit: after AveragedSGD put the averaged weights in

    def __init__(self) -> None:
        self.best: dict[str, torch.Tensor] | None = None

    def after_validate(self, trainer: Trainer) -> None:
        if trainer.improved:
            self.best = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    def after_fit(self, trainer: Trainer) -> None:
        if self.best is not None:
            trainer.model.load_state_dict(self.best)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")


class LanguageModelArchitectureStep(ArchitectureStep):
    """The alpha step of a language model (DARTS' recurrent search): before each weight step, one alpha
    step on the window of the validation stream at the same position and length as the training window,
    with a hidden state of its own, carried detached from step to step and reset each epoch."""

    def __init__(self, architecture: Architecture, held_out: torch.Tensor, batch_size: int,
                 warmup_epochs: int = 0, loss_limit: float | None = None) -> None:
        if len(held_out) < 2 * batch_size:
            raise ValueError(f"the alpha step's validation stream has {len(held_out)} tokens, too few for "
                             f"{batch_size} rows; give a longer validation file or a smaller batch size")
        self.architecture, self.rows = architecture, batchify(held_out, batch_size)
        self.warmup_epochs, self.loss_limit = warmup_epochs, loss_limit
        self._losses: list[float] = []
        self.hidden: torch.Tensor | None = None

    def before_epoch(self, trainer: Trainer) -> None:
        self.hidden, self._losses = None, []

    def before_batch(self, trainer: Trainer) -> None:
        if self.warming_up(trainer):
            return
        start, size = trainer.window
        inputs, targets = trainer.to_device(window(self.rows, start % (self.rows.shape[1] - 1), size))
        hidden = self.hidden if self.hidden is not None else trainer.model.init_hidden(inputs.shape[0])
        result = self.architecture.step(trainer.batch, ((inputs, hidden), targets))
        self.check(result["val_loss"], trainer)
        self.hidden = result["val_output"].hidden
        self._losses.append(result["val_loss"])


__all__ = ["ActivationRegularization", "AveragedSGD", "BPTTLearningRate", "HiddenState", "KeepBest",
           "LanguageModelArchitectureStep", "LanguageModelLoss", "LanguageModelTrainer", "PerplexityMeter",
           "bptt_windows", "window"]
