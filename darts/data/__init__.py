"""Data sets: generated ones (no downloads) and the wrappers the trainer needs."""

from darts.data.checks import DataWarning, check_features, check_labels
from darts.data.datasets import DictTargetDataset
from darts.data.documents import DataFileError, Documents, Vocabulary, load_p3b3, load_text_table
from darts.data.reports import clinical_reports
from darts.data.synthetic import keyword_sequences, motif_sequences, tabular_tasks

__all__ = ["DataFileError", "DataWarning", "DictTargetDataset", "Documents", "Vocabulary", "check_features",
           "check_labels", "clinical_reports", "keyword_sequences", "load_p3b3", "load_text_table", "motif_sequences",
           "tabular_tasks"]
