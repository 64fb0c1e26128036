"""Data sets: generated ones (no downloads) and the wrappers the trainer needs."""

from darts.data.datasets import DictTargetDataset
from darts.data.synthetic import keyword_sequences, motif_sequences, tabular_tasks

__all__ = ["DictTargetDataset", "keyword_sequences", "motif_sequences", "tabular_tasks"]
