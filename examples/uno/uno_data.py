"""Uno-like data: cell-line gene expression and drug descriptors -> drug response (dose-response AUC).

Two sources, one task (``uno``, registered with darts when this module is imported):
- ``synthetic``: generated pairs of (cell line, drug). Cell lines have 942 expression features with a
  low-rank structure, drugs have descriptors; the response depends on both and on their interaction,
  plus noise, and lies mostly in [0, 1].
- ``file``: a user's CSV or Parquet table with the feature columns, a response column, and glob patterns
  telling which columns are cell features and which are drug features.

Targets: ``regression`` of the response, ``classification`` of "responsive" (response below the
threshold), or ``both`` at once as a multi-task model. Features are standardised with the training
split's statistics; the network's stem encodes the cell and the drug features apart, then joins them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn
from torch.utils.data import TensorDataset

from darts.data import DataFileError, DictTargetDataset, check_features
from darts.data.tables import is_categorical, match_columns, read_table, split_rows, standardize
from darts.tasks import Target, Task, TaskData, TaskOptions, register_task

CELL_FEATURES, DRUG_FEATURES = 942, 128


def uno_like(samples: int = 3000, cell_features: int = CELL_FEATURES, drug_features: int = DRUG_FEATURES,
             cell_lines: int = 60, drugs: int = 50, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """A table of (cell line, drug) pairs: ``expr_*`` and ``desc_*`` columns and the response ``auc``."""
    rng = np.random.default_rng(seed)
    expression = rng.normal(size=(cell_lines, 8)) @ rng.normal(size=(8, cell_features)) \
        + 0.5 * rng.normal(size=(cell_lines, cell_features))
    descriptors = rng.normal(size=(drugs, 6)) @ rng.normal(size=(6, drug_features)) \
        + 0.3 * rng.normal(size=(drugs, drug_features))
    a, b = min(30, cell_features // 2), min(10, drug_features // 2)  # informative features of each kind
    cell_effect = np.tanh(expression[:, :a] @ rng.normal(size=a) / (0.4 * a))
    drug_effect = descriptors[:, :b] @ rng.normal(size=b) / (0.8 * b)
    sensitivity = np.tanh(expression[:, a:2 * a] @ rng.normal(size=(a, 3)) / (0.4 * a))  # cell-line pathways
    targets = descriptors[:, b:2 * b] @ rng.normal(size=(b, 3)) / (0.6 * b)              # what each drug hits
    pairs = np.stack([rng.integers(0, cell_lines, samples), rng.integers(0, drugs, samples)], axis=1)
    c, d = pairs[:, 0], pairs[:, 1]
    logit = 0.8 * cell_effect[c] + 0.6 * drug_effect[d] - 1.2 * (sensitivity[c] * targets[d]).sum(1)
    auc = 1 / (1 + np.exp(-1.5 * logit)) + noise * rng.normal(size=samples)
    table = pd.DataFrame(np.concatenate([expression[c], descriptors[d]], axis=1),
                         columns=[f"expr_{i}" for i in range(cell_features)] + [f"desc_{i}" for i in range(drug_features)])
    table.insert(0, "drug", [f"drug_{i}" for i in d])
    table.insert(0, "cell_line", [f"cell_{i}" for i in c])
    table["auc"] = auc
    return table


def load_uno_table(path: str | Path, response: str, cell_columns: list[str], drug_columns: list[str]):
    """(table, cell feature names, drug feature names) from a CSV, TSV or Parquet file; every problem is named."""
    table = read_table(path, {"response": [response]})
    groups = {}
    for group, patterns in (("cell", cell_columns), ("drug", drug_columns)):
        chosen = match_columns(table, patterns, path, f"{group} feature", exclude=[response])
        text = [c for c in chosen if is_categorical(table[c])]
        if text:
            raise DataFileError(f"{path}: {group} feature columns must be numeric; not numeric: {text[:5]}")
        groups[group] = chosen
        check_features(table[chosen].to_numpy(np.float64), f"{path} ({group} features {chosen[:3]}...)")
    both = sorted(set(groups["cell"]) & set(groups["drug"]))
    if both:
        raise DataFileError(f"{path}: columns {both[:5]} match both the cell and the drug patterns")
    if not pd.api.types.is_numeric_dtype(table[response]) or not np.isfinite(table[response].to_numpy(float)).all():
        raise DataFileError(f"{path}: response column {response!r} must be finite numbers with no empty cells")
    return table, groups["cell"], groups["drug"]


class TwoTowerStem(nn.Module):
    """Encode the cell features and the drug features apart (linear, BatchNorm, ReLU), then concatenate."""

    def __init__(self, cell_features: int, drug_features: int, channels: int) -> None:
        super().__init__()
        self.cell_features = cell_features
        half = channels // 2
        self.cell = nn.Sequential(nn.Linear(cell_features, half, bias=False), nn.BatchNorm1d(half), nn.ReLU())
        self.drug = nn.Sequential(nn.Linear(drug_features, channels - half, bias=False),
                                  nn.BatchNorm1d(channels - half), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.cell(x[:, :self.cell_features]), self.drug(x[:, self.cell_features:])], dim=1)


@register_task
class Uno(Task):
    name, family = "uno", "linear"
    description = "drug response from cell-line expression and drug descriptors (CANDLE Uno-like)"

    class Options(TaskOptions):
        source: Literal["synthetic", "file"] = Field("synthetic", description="generated pairs, or your table")
        path: str | None = Field(None, description="file: a CSV or Parquet table")
        response: str = Field("auc", description="the response column")
        cell_columns: list[str] = Field(["expr_*"], description="glob patterns of the cell-line feature columns")
        drug_columns: list[str] = Field(["desc_*"], description="glob patterns of the drug feature columns")
        targets: Literal["regression", "classification", "both"] = Field(
            "both", description="predict the response, whether it is below the threshold, or both at once")
        threshold: float = Field(0.5, description="a response below it counts as responsive")
        test_fraction: float = Field(0.2, gt=0, lt=1, description="rows held out for testing")
        samples: int = Field(3000, ge=10, description="synthetic: rows")
        noise: float = Field(0.05, ge=0, description="synthetic: response noise")

    def load(self, options: Options, seed: int) -> TaskData:
        if options.source == "synthetic":
            table = uno_like(options.samples, noise=options.noise, seed=seed)
            cell, drug = [c for c in table if c.startswith("expr_")], [c for c in table if c.startswith("desc_")]
        elif options.path is None:
            raise ValueError("data.source 'file' needs data.path: your CSV or Parquet table")
        else:
            table, cell, drug = load_uno_table(options.path, options.response, options.cell_columns,
                                               options.drug_columns)
        return self.task_data(table, cell, drug, options, seed)

    @staticmethod
    def task_data(table: pd.DataFrame, cell: list[str], drug: list[str], options: Options, seed: int) -> TaskData:
        features = table[cell + drug].to_numpy(np.float32)
        response = table[options.response if options.source == "file" else "auc"].to_numpy(np.float32)
        train, test = split_rows(len(table), options.test_fraction, seed)
        x = torch.from_numpy(standardize(features[train], features)[1])  # the training rows' statistics
        targets = {"response": torch.from_numpy(response),
                   "responsive": torch.from_numpy((response < options.threshold).astype(np.int64))}
        chosen = {"regression": ["response"], "classification": ["responsive"],
                  "both": ["response", "responsive"]}[options.targets]
        specs = {"response": Target("response", "regression"), "responsive": Target("responsive", classes=2)}
        if len(chosen) == 1:
            y = targets[chosen[0]]
            train_set, test_set = TensorDataset(x[train], y[train]), TensorDataset(x[test], y[test])
        else:
            train_set = DictTargetDataset(x[train], {t: targets[t][train] for t in chosen})
            test_set = DictTargetDataset(x[test], {t: targets[t][test] for t in chosen})
        return TaskData(train_set, test_set, tuple(specs[t] for t in chosen), multi_task=len(chosen) > 1,
                        in_channels=x.shape[1], stem=lambda channels: TwoTowerStem(len(cell), len(drug), channels),
                        artifacts={"features.json": {"cell": cell, "drug": drug, "response": options.response,
                                                     "threshold": options.threshold}})
