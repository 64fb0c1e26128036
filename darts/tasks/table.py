"""The ``table`` task: your CSV, TSV or Parquet table, searched with the ``linear`` family.

Feature columns are chosen by name or glob pattern (by default every column but the targets and ``ignore``);
numeric ones are standardised per column on the training split, categorical ones (text, booleans) one-hot
encoded over the training split's categories. Each target column is a classification (text labels, or
whole numbers with at most ``max_classes`` values) or a regression (other numbers, standardised on the
training split: the loss and the error metrics are in training standard deviations, R2 is unchanged);
``target_kinds`` overrides the inference. Several targets make a multi-task model.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator
from torch.utils.data import TensorDataset

from darts.data import DataFileError, DictTargetDataset, check_labels
from darts.data.documents import reindex_labels
from darts.data.tables import TableEncoder, match_columns, read_table, split_rows
from darts.tasks import Target, Task, TaskData, TaskOptions, register_task

Kind = Literal["classification", "regression"]


class TableOptions(TaskOptions):
    path: str | None = Field(None, description="the table: a .csv, .tsv or .parquet file with a header row")
    test_path: str | None = Field(None, description="a test table with the same columns; null: data.test_fraction "
                                                    "of data.path's rows, drawn from the seed")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="rows held out for testing when there is no test_path")
    targets: list[str] = Field([], description="target column(s); several make a multi-task model")
    target_kinds: dict[str, Kind] = Field({}, description="per target, classification or regression; a target not "
                                                          "named here is inferred from its values")
    features: list[str] = Field(["*"], description="feature columns: names or glob patterns (targets and ignored "
                                                   "columns are never features)")
    ignore: list[str] = Field([], description="columns (names or glob patterns) left out, e.g. identifiers")
    max_classes: int = Field(20, ge=2, description="a numeric target of whole numbers with at most this many values "
                                                   "is inferred as classification")
    max_categories: int = Field(50, ge=1, description="a categorical feature with more distinct values is an error "
                                                      "(an identifier or free text)")
    missing: Literal["error", "mean"] = Field("error", description="empty cells of numeric features: an error, or "
                                                                   "filled with the training mean")

    @field_validator("targets", "features", "ignore", mode="before")
    @classmethod
    def _one_name(cls, value):
        return [value] if isinstance(value, str) else value


def infer_kind(column: pd.Series, max_classes: int) -> Kind:
    """Classification for labels (text, booleans, whole numbers with few values), regression for other numbers."""
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return "classification"
    values = column.dropna().to_numpy(np.float64)
    whole = np.all(np.mod(values, 1) == 0)
    return "classification" if whole and len(np.unique(values)) <= max_classes else "regression"


def _labels(column: pd.Series) -> np.ndarray:
    """Class labels as they sort: numbers as numbers, anything else as text."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return column.to_numpy() if numeric else column.astype(str).to_numpy()


@register_task
class Table(Task):
    name, family = "table", "linear"
    description = "your CSV, TSV or Parquet table: numeric and categorical features, one or more target columns"
    Options = TableOptions

    def load(self, options: TableOptions, seed: int) -> TaskData:
        if options.path is None:
            raise ValueError("task table needs data.path: your .csv, .tsv or .parquet file (and data.targets: the "
                             "target column(s))")
        if not options.targets:
            raise ValueError("task table needs data.targets: the target column(s) to predict, e.g. "
                             "--data.targets '[species]'")
        table = read_table(options.path, {"target": options.targets})
        where = str(options.path)
        unknown = sorted(set(options.target_kinds) - set(options.targets))
        if unknown:
            raise ValueError(f"data.target_kinds names {unknown}, which are not in data.targets {options.targets}")
        if options.test_path is not None:
            test = read_table(options.test_path, {"training table's": list(table.columns)})
            where = f"{options.path}, {options.test_path}"
            train = table
        else:
            if len(table) < 2:
                raise DataFileError(f"{options.path}: {len(table)} row(s); splitting off a test set needs at least 2")
            train_rows, test_rows = split_rows(len(table), options.test_fraction, seed)
            train, test = table.iloc[train_rows], table.iloc[test_rows]
        left_out = list(options.targets)
        if options.ignore:
            left_out += match_columns(table, options.ignore, options.path, "data.ignore")
        features = match_columns(table, options.features, options.path, "data.features", exclude=left_out)
        encoder = TableEncoder.fit(train, features, options.path, options.max_categories, options.missing)
        x_train = torch.from_numpy(encoder.transform(train, options.path, options.missing))
        x_test = torch.from_numpy(encoder.transform(test, options.test_path or options.path, options.missing))
        targets, y_train, y_test, described = [], {}, {}, {}
        for name in options.targets:
            kind = options.target_kinds.get(name) or infer_kind(train[name], options.max_classes)
            for split, frame in (("training", train), ("test", test)):
                if frame[name].isna().any():
                    raise DataFileError(f"{where}: target column {name!r} has {int(frame[name].isna().sum())} empty "
                                        f"cell(s) in the {split} rows; every row needs a target")
            if kind == "classification":
                raw = {split: _labels(frame[name]) for split, frame in (("train", train), ("test", test))}
                check_labels({name: raw["train"]}, {name: raw["test"]}, where)
                labels, mapping = reindex_labels({split: {name: column} for split, column in raw.items()})
                y_train[name] = torch.from_numpy(labels["train"][name])
                y_test[name] = torch.from_numpy(labels["test"][name])
                targets.append(Target(name, classes=len(mapping[name])))
                described[name] = {"kind": kind, "classes": mapping[name]}
            else:
                if not pd.api.types.is_numeric_dtype(train[name]) or pd.api.types.is_bool_dtype(train[name]):
                    raise DataFileError(f"{where}: target column {name!r} is set to regression but holds "
                                        f"values that are not numbers, e.g. {train[name].iloc[0]!r}; set it to classification")
                values = train[name].to_numpy(np.float64)
                mean, std = float(values.mean()), float(values.std()) or 1.0
                y_train[name] = torch.from_numpy(((values - mean) / std).astype(np.float32))
                y_test[name] = torch.from_numpy(((test[name].to_numpy(np.float64) - mean) / std).astype(np.float32))
                targets.append(Target(name, "regression"))
                described[name] = {"kind": kind, "mean": mean, "std": std}
        if x_train.shape[1] == 0:
            raise DataFileError(f"{options.path}: no feature column is left once the targets and data.ignore are "
                                "taken out")
        if len(targets) == 1:
            name = targets[0].name
            train_set, test_set = TensorDataset(x_train, y_train[name]), TensorDataset(x_test, y_test[name])
        else:
            train_set, test_set = DictTargetDataset(x_train, y_train), DictTargetDataset(x_test, y_test)
        return TaskData(train_set, test_set, tuple(targets), multi_task=len(targets) > 1, in_channels=x_train.shape[1],
                        artifacts={"table.json": {"features": encoder.feature_names, "encoding": encoder.to_dict(),
                                                  "targets": described}})
