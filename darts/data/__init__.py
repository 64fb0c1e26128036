"""Data sets and loaders."""

from darts.data.synthetic import motif_sequences

__all__ = ["motif_sequences"]
