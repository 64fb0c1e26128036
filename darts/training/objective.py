"""The loss and the metrics of a task, per target, for single- and multi-task models.

:class:`TaskLoss` is cross-entropy per classification target and mean squared error per regression
target, combined by the task weights (the mean by default). :class:`MetricAccumulator` gathers one epoch's
predictions and starts afresh with each :meth:`reset` (CANDLE's meters never did), then reports loss,
accuracy, micro and macro F1 per classification target, MSE and R2 per regression target, and their means.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from darts.tasks import Target

#: metrics where larger is better; every other metric (loss, mse) is better smaller
HIGHER_IS_BETTER = ("accuracy", "micro_f1", "macro_f1", "r2")


def higher_is_better(metric: str) -> bool:
    return metric.endswith(HIGHER_IS_BETTER)


class TaskLoss:
    """``loss(outputs, targets)``: one target's loss, or the weighted mean over a dict of targets."""

    def __init__(self, targets: Sequence[Target], multi_task: bool, weights: Mapping[str, float] | None = None,
                 label_smoothing: float = 0.0) -> None:
        self.targets = {t.name: t for t in targets}
        self.label_smoothing = label_smoothing
        self.multi_task = multi_task
        if weights is not None:
            unknown = sorted(set(weights) - set(self.targets))
            if unknown or not multi_task:
                raise ValueError(f"task_weights names {unknown or sorted(weights)}, but the targets are "
                                 f"{sorted(self.targets)}" + ("" if multi_task else " (a single-task model)"))
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"task_weights must be non-negative with a positive sum, got {dict(weights)}")
        self.weights = {name: (1.0 if weights is None else weights.get(name, 0.0)) for name in self.targets}

    def per_target(self, outputs, targets) -> dict[str, torch.Tensor]:
        if not self.multi_task:
            (target,) = self.targets.values()
            return {target.name: _loss(target, outputs, targets, self.label_smoothing)}
        return {name: _loss(self.targets[name], outputs[name], targets[name], self.label_smoothing)
                for name in self.targets}

    def combine(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = sum(self.weights.values())
        return sum(self.weights[name] * loss for name, loss in losses.items()) / total

    def __call__(self, outputs, targets) -> torch.Tensor:
        return self.combine(self.per_target(outputs, targets))


def _loss(target: Target, output: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    if target.kind == "classification":
        return F.cross_entropy(output, labels, label_smoothing=label_smoothing)
    return F.mse_loss(output, labels.to(output.dtype))


class MetricAccumulator:
    """Gathers outputs and labels over an epoch; :meth:`compute` gives the metrics named ``{prefix}{metric}``."""

    def __init__(self, loss: TaskLoss) -> None:
        self.loss = loss
        self.reset()

    def reset(self) -> None:
        self._predictions: dict[str, list[np.ndarray]] = {name: [] for name in self.loss.targets}
        self._labels: dict[str, list[np.ndarray]] = {name: [] for name in self.loss.targets}
        self._losses: dict[str, float] = {name: 0.0 for name in self.loss.targets}
        self._count = 0

    def update(self, outputs, targets) -> None:
        outputs = outputs if self.loss.multi_task else {next(iter(self.loss.targets)): outputs}
        targets = targets if self.loss.multi_task else {next(iter(self.loss.targets)): targets}
        batch = len(next(iter(targets.values())))
        with torch.no_grad():
            for name, target in self.loss.targets.items():
                output = outputs[name].detach().float()  # under autocast: bf16 or fp16, which numpy lacks
                self._losses[name] += float(_loss(target, output, targets[name])) * batch
                prediction = output.argmax(-1) if target.kind == "classification" else output
                self._predictions[name].append(prediction.cpu().numpy())
                self._labels[name].append(targets[name].detach().cpu().numpy())
        self._count += batch

    def compute(self, prefix: str = "") -> dict[str, float]:
        if not self._count:
            return {}
        per_target = {name: self._losses[name] / self._count for name in self.loss.targets}
        metrics: dict[str, float] = {"loss": float(self.loss.combine(per_target))}
        means: dict[str, list[float]] = {}
        for name, target in self.loss.targets.items():
            predictions, labels = np.concatenate(self._predictions[name]), np.concatenate(self._labels[name])
            values = {"loss": per_target[name]}
            if target.kind == "classification":
                values["accuracy"] = float((predictions == labels).mean())
                values["micro_f1"], values["macro_f1"] = f1_scores(labels, predictions)
            else:
                values["mse"] = float(((predictions - labels) ** 2).mean())
                values["r2"] = r2(labels, predictions) if len(labels) > 1 else float("nan")
            for metric, value in values.items():
                if self.loss.multi_task:
                    metrics[f"{name}_{metric}"] = value
                means.setdefault(metric, []).append(value)
        for metric, values in means.items():
            if metric != "loss":
                metrics[metric] = float(np.mean(values))
        return {prefix + key: value for key, value in metrics.items()}


def default_monitor(targets: Sequence[Target], validation: bool = True) -> str:
    """``val_accuracy`` when a target is a classification, else ``val_loss`` (``train_`` without validation)."""
    prefix = "val_" if validation else "train_"
    return prefix + ("accuracy" if any(t.kind == "classification" for t in targets) else "loss")


def majority_accuracy(targets: Sequence[Target], train: Mapping[str, torch.Tensor],
                      test: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Test accuracy of always predicting the training split's most frequent class, per classification target
    (a baseline that never looks at the test labels to choose)."""
    return {t.name: float((test[t.name] == torch.bincount(train[t.name]).argmax()).double().mean())
            for t in targets if t.kind == "classification"}


# scikit-learn's f1_score and r2_score give the same figures (tests/test_training.py checks them against it), but
# importing sklearn.metrics costs every process 1.5 s, more than a short run's whole validation
def f1_scores(labels: np.ndarray, predictions: np.ndarray) -> tuple[float, float]:
    """Micro and macro F1 of single-label class predictions, as ``sklearn.metrics.f1_score`` with
    ``zero_division=0``: per class 2 TP / (predicted + actual); macro averages over every class that occurs in
    the labels or the predictions; micro pools the counts (for single labels, the accuracy)."""
    classes, index = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    actual = np.bincount(index[:len(labels)], minlength=len(classes))
    predicted = np.bincount(index[len(labels):], minlength=len(classes))
    hits = np.bincount(index[:len(labels)][labels == predictions], minlength=len(classes))
    micro = 2 * hits.sum() / (actual.sum() + predicted.sum()) if len(labels) else 0.0
    return float(micro), float(np.mean(2 * hits / (actual + predicted))) if len(classes) else 0.0


def r2(labels: np.ndarray, predictions: np.ndarray) -> float:
    """The coefficient of determination 1 - SS_res / SS_tot, averaged over outputs, as
    ``sklearn.metrics.r2_score``: an output with constant labels scores 1 if predicted exactly, else 0."""
    labels = labels.reshape(len(labels), -1).astype(np.float64)
    predictions = predictions.reshape(len(predictions), -1).astype(np.float64)
    residual = ((labels - predictions) ** 2).sum(0)
    total = ((labels - labels.mean(0)) ** 2).sum(0)
    constant = np.where(residual == 0, 1.0, 0.0)
    scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1.0), constant)
    return float(scores.mean())
