"""Users' tables: CSV, TSV or Parquet files read with pandas, columns chosen by name or glob pattern, and
features encoded on the training split (numeric columns standardised per column, categorical ones one-hot).

Every problem is a :class:`DataFileError` naming the file and the column.
"""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from darts.data.checks import DataWarning
from darts.data.documents import DataFileError

SEPARATORS = {".csv": ",", ".txt": ",", ".tsv": "\t", ".tab": "\t"}
MISSING = "<missing>"  # the category of an empty cell in a categorical column


def read_table(path: str | Path, required: Mapping[str, Sequence[str]] | None = None, **read_csv: Any) -> pd.DataFrame:
    """A CSV (``.csv``, ``.txt``), TSV (``.tsv``, ``.tab``) or Parquet (``.parquet``) file with a header, the
    ``required`` columns (per role, e.g. ``{"target": ["price"]}``) and at least one row; ``read_csv``: further
    options of :func:`pandas.read_csv`."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found" + (" (it is a folder)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pd.read_parquet(path)
        except ImportError as error:
            raise DataFileError(f"{path}: reading Parquet needs pyarrow (pip install 'darts-nas[parquet]')") from error
        except (OSError, ValueError) as error:
            raise DataFileError(f"{path}: cannot be read as Parquet: {error}") from error
    elif suffix in SEPARATORS:
        separator = SEPARATORS[suffix]
        try:
            table = pd.read_csv(path, sep=separator, **read_csv)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
            kind = "TSV" if separator == "\t" else "CSV"
            raise DataFileError(f"{path}: cannot be read as {kind}: {error}") from error
    else:
        raise DataFileError(f"{path}: unsupported extension {suffix!r}; give a .csv, .tsv or .parquet file")
    missing = {role: [name for name in names if name not in table.columns] for role, names in (required or {}).items()}
    missing = {role: names for role, names in missing.items() if names}
    if missing:  # before the rows: a file that is no table lacks its columns
        named = ", ".join(f"{role} column(s) {names}" for role, names in missing.items())
        raise DataFileError(f"{path}: {named} missing; the file has columns: {_columns_text(table)}")
    if table.empty:
        raise DataFileError(f"{path}: the table has a header but no rows")
    return table


def _columns_text(table: pd.DataFrame) -> str:
    names = [str(c) for c in table.columns]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


def match_columns(table: pd.DataFrame, patterns: Sequence[str], path: str | Path, what: str,
                  exclude: Sequence[str] = ()) -> list[str]:
    """The columns of ``table`` (in its order) matching any of the glob ``patterns``, less ``exclude``; an error
    naming the patterns if none does."""
    chosen = [c for c in table.columns if c not in exclude and any(fnmatch.fnmatchcase(str(c), p) for p in patterns)]
    if not chosen:
        raise DataFileError(f"{path}: no column matches the {what} patterns {list(patterns)}; the file has columns: "
                            f"{_columns_text(table)}")
    return chosen


def split_rows(rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: ``fraction`` of the rows (at least one, never all) drawn at random from ``seed``."""
    order = np.random.default_rng(seed).permutation(rows)
    cut = min(rows - 1, max(1, round(fraction * rows)))
    return order[cut:], order[:cut]


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every array standardised per column with the mean and standard deviation of ``train``'s columns (a
    constant column keeps its scale)."""
    mean, std = train.mean(0, dtype=np.float64), train.std(0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return tuple(((x - mean) / std).astype(np.float32) for x in (train, *others))


def is_categorical(column: pd.Series) -> bool:
    """Text, boolean or pandas categorical columns are categories; numbers are measurements."""
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


@dataclass
class TableEncoder:
    """Feature columns to a float matrix, fitted on the training rows: numeric columns standardised per column,
    categorical ones one-hot over the training split's categories (a test category never seen in training
    encodes as all zeros, with a :class:`DataWarning`)."""

    numeric: list[str]
    categorical: list[str]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, train: pd.DataFrame, columns: Sequence[str], path: str | Path, max_categories: int = 50,
            missing: str = "error") -> "TableEncoder":
        encoder = cls([c for c in columns if not is_categorical(train[c])],
                      [c for c in columns if is_categorical(train[c])])
        for column in encoder.numeric:
            values = train[column].to_numpy(np.float64)
            _check_numeric(values, column, path, missing)
            finite = values[np.isfinite(values)]
            if not len(finite):
                raise DataFileError(f"{path}: feature column {column!r} has no value in the training rows")
            std = float(finite.std())
            encoder.mean[column], encoder.std[column] = float(finite.mean()), std if std > 0 else 1.0
        for column in encoder.categorical:
            values = sorted(set(_categories(train[column])), key=str)
            if len(values) > max_categories:
                raise DataFileError(f"{path}: categorical feature column {column!r} has {len(values)} distinct values "
                                    f"(more than data.max_categories {max_categories}): it looks like an identifier "
                                    "or free text; leave it out with data.ignore, or raise data.max_categories")
            encoder.categories[column] = values
        return encoder

    @property
    def feature_names(self) -> list[str]:
        """The encoded matrix's columns: numeric columns by name, then ``column=category`` per one-hot column."""
        return self.numeric + [f"{c}={v}" for c in self.categorical for v in self.categories[c]]

    def transform(self, frame: pd.DataFrame, path: str | Path, missing: str = "error") -> np.ndarray:
        parts = []
        for column in self.numeric:
            values = frame[column].to_numpy(np.float64)
            _check_numeric(values, column, path, missing)
            values = np.where(np.isnan(values), self.mean[column], values)  # missing: mean imputes
            parts.append(((values - self.mean[column]) / self.std[column])[:, None])
        for column in self.categorical:
            values = np.asarray(_categories(frame[column]), dtype=object)
            known = self.categories[column]
            unseen = sorted(set(values.tolist()) - set(known), key=str)
            if unseen:
                warnings.warn(f"{path}: categorical column {column!r} holds value(s) {unseen[:5]} never seen in "
                              "training; they encode as no category", DataWarning, stacklevel=2)
            parts.append((values[:, None] == np.asarray(known, dtype=object)[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32) if parts else np.zeros((len(frame), 0), np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical, "mean": self.mean, "std": self.std,
                "categories": self.categories}


def _categories(column: pd.Series) -> list[str]:
    return [MISSING if pd.isna(value) else str(value) for value in column.tolist()]


def _check_numeric(values: np.ndarray, column: str, path: str | Path, missing: str) -> None:
    if np.isinf(values).any():
        raise DataFileError(f"{path}: feature column {column!r} holds infinite values in {int(np.isinf(values).sum())} "
                            "row(s); replace them before training")
    empty = int(np.isnan(values).sum())
    if empty and missing == "error":
        raise DataFileError(f"{path}: feature column {column!r} has {empty} empty cell(s); fill them, drop the rows or "
                            "the column (data.ignore), or set data.missing: mean to fill them with the training mean")
