"""The training loop, its callbacks, and the loss and metrics of a task."""

from darts.training.callbacks import (ArchitectureStep, AuxiliaryLoss, Checkpoint, DropPathSchedule, EarlyStopping,
                                      GenotypeTracker,
                                      GradientClipping, LRSchedule, MetricsLogger, ProgressBar,
                                      TerminateOnNonFinite, load_checkpoint, make_optimizer,
                                      make_scheduler)
from darts.training.objective import MetricAccumulator, TaskLoss
from darts.training.trainer import Callback, NonFiniteLossError, Trainer

__all__ = ["ArchitectureStep", "AuxiliaryLoss", "Callback", "DropPathSchedule", "Checkpoint", "EarlyStopping", "GenotypeTracker", "GradientClipping",
           "LRSchedule", "MetricAccumulator", "MetricsLogger", "NonFiniteLossError", "ProgressBar", "TaskLoss",
           "TerminateOnNonFinite", "Trainer", "load_checkpoint", "make_optimizer",
           "make_scheduler"]
