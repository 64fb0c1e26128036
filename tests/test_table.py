"""The ``table`` task: users' CSV, TSV and Parquet tables through the CLI and the Python API, the encoding
checked against pandas and scikit-learn, and bad tables named with the file and the column."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from darts.config import load_config
from darts.data import DataFileError, DataWarning
from darts.workflows import load_data, search, train

SHORT = ["--search.epochs", "2", "--search.warmup_epochs", "0", "--train.epochs", "3", "--model.channels", "8",
         "--model.layers", "2", "--model.nodes", "2"]


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """scikit-learn's bundled wine data, written by pandas as a user's CSV (13 numeric features, 3 classes)."""
    from sklearn.datasets import load_wine

    path = tmp_path_factory.mktemp("wine") / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    return path


def mixed_table(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.normal(10, 3, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    return pd.DataFrame({"id": [f"row{i}" for i in range(rows)], "size": size, "weight": rng.normal(0, 1, rows),
                         "colour": colour, "flag": rng.random(rows) > 0.5,
                         "kind": np.where(size > 10, "big", "small"), "price": 2 * size + rng.normal(0, 0.1, rows)})


def config(path, *extra):
    return load_config("table-quick", ["--data.path", str(path), *extra])


def test_the_encoding_is_pandas_one_hot_and_per_column_standardisation(tmp_path):
    table = mixed_table()
    train, test = table.iloc[:90], table.iloc[90:]
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.tsv", index=False, sep="\t")
    data = load_data(config(tmp_path / "train.csv", "--data.test_path", str(tmp_path / "test.tsv"),
                            "--data.targets", "[kind, price]", "--data.ignore", "[id]"))
    assert [t.name for t in data.targets] == ["kind", "price"] and data.multi_task
    assert (data.targets[0].kind, data.targets[0].classes, data.targets[1].kind) == ("classification", 2, "regression")
    numeric = ["size", "weight"]
    mean, std = train[numeric].mean(), train[numeric].std(ddof=0)
    dummies = pd.get_dummies(table[["colour", "flag"]].astype(str), dtype=float)  # every category occurs in training
    for split, rows, dataset in (("train", train, data.train), ("test", test, data.test)):
        x = torch.stack([dataset[i][0] for i in range(len(dataset))]).numpy()
        expected = np.concatenate([((rows[numeric] - mean) / std).to_numpy(), dummies.loc[rows.index].to_numpy()], 1)
        np.testing.assert_allclose(x, expected, atol=1e-4, err_msg=split)
        labels = torch.stack([dataset[i][1]["kind"] for i in range(len(dataset))]).numpy()
        assert (labels == (rows["kind"] == "small").to_numpy()).all()  # classes in sorted order: big, small
        price = torch.stack([dataset[i][1]["price"] for i in range(len(dataset))]).numpy()
        np.testing.assert_allclose(price, (rows["price"] - train["price"].mean()) / train["price"].std(ddof=0),
                                   atol=1e-4)


def test_csv_tsv_and_parquet_read_alike(tmp_path):
    pytest.importorskip("pyarrow")
    table = mixed_table()
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    table.to_parquet(tmp_path / "t.parquet", index=False)
    loaded = [load_data(config(tmp_path / name, "--data.targets", "kind", "--data.ignore", "[id]"))
              for name in ("t.csv", "t.tsv", "t.parquet")]
    first = loaded[0].train.tensors
    for data in loaded[1:]:
        assert all(torch.allclose(a.float(), b.float(), atol=1e-6) for a, b in zip(first, data.train.tensors))


def test_target_kinds_are_inferred_or_set():
    from darts.tasks.table import infer_kind

    assert infer_kind(pd.Series(["a", "b"]), 20) == "classification"
    assert infer_kind(pd.Series([0, 1, 2, 1]), 20) == "classification"
    assert infer_kind(pd.Series([0.0, 1.0, 1.0]), 20) == "classification"
    assert infer_kind(pd.Series(range(30)), 20) == "regression"
    assert infer_kind(pd.Series([0.5, 1.25]), 20) == "regression"


def test_a_set_kind_overrides_the_inference(tmp_path):
    table = mixed_table().assign(stars=lambda t: (t["size"] // 3).astype(int))
    table.to_csv(tmp_path / "t.csv", index=False)
    inferred = load_data(config(tmp_path / "t.csv", "--data.targets", "stars", "--data.ignore", "[id, kind, price]"))
    assert inferred.targets[0].kind == "classification"
    chosen = load_data(config(tmp_path / "t.csv", "--data.targets", "stars", "--data.ignore", "[id, kind, price]",
                              "--data.target_kinds", "{stars: regression}"))
    assert chosen.targets[0].kind == "regression"


def test_missing_numbers_are_an_error_or_the_training_mean(tmp_path):
    table = mixed_table()
    table.loc[[3, 7], "weight"] = np.nan
    table.to_csv(tmp_path / "t.csv", index=False)
    args = ["--data.targets", "kind", "--data.ignore", "[id, price]"]
    with pytest.raises(DataFileError, match=r"t\.csv: feature column 'weight' has \d empty cell"):
        load_data(config(tmp_path / "t.csv", *args))
    data = load_data(config(tmp_path / "t.csv", *args, "--data.missing", "mean"))
    x = torch.cat([data.train.tensors[0], data.test.tensors[0]])
    assert torch.isfinite(x).all() and (x[:, 1] == 0).sum() >= 1  # a filled cell is the mean: 0 once standardised


def test_a_test_category_never_seen_in_training_warns_and_encodes_as_none(tmp_path):
    table = mixed_table()
    train, test = table.iloc[:90], table.iloc[90:].assign(colour="purple")
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    with pytest.warns(DataWarning, match=r"'colour' holds value\(s\) \['purple'\] never seen"):
        data = load_data(config(tmp_path / "train.csv", "--data.test_path", str(tmp_path / "test.csv"),
                                "--data.targets", "kind", "--data.ignore", "[id, price]"))
    assert (data.test.tensors[0][:, 2:5] == 0).all()  # size, weight, then colour=blue, green, red


@pytest.mark.parametrize("change, args, message", [
    (lambda t: t, ["--data.targets", "[kinds]"], "target column(s) ['kinds'] missing; the file has columns: id, size"),
    (lambda t: t, ["--data.targets", "kind"], "categorical feature column 'id' has 96 distinct values"),
    (lambda t: t, ["--data.targets", "kind", "--data.features", "[wid*]"], "no column matches the data.features"),
    (lambda t: t.assign(kind="big"), ["--data.targets", "kind", "--data.ignore", "[id]"], "single class ('big')"),
    (lambda t: t.assign(price=None), ["--data.targets", "price", "--data.ignore", "[id]"],
     "target column 'price' has 96 empty cell(s) in the training rows"),
    (lambda t: t.assign(size=np.inf), ["--data.targets", "kind", "--data.ignore", "[id]"],
     "feature column 'size' holds infinite values"),
    (lambda t: t, ["--data.targets", "kind", "--data.ignore", "[id]", "--data.target_kinds", "{kind: regression}"],
     "target column 'kind' is set to regression but holds values that are not numbers, e.g. '"),
    (lambda t: t, ["--data.targets", "kind", "--data.features", "[id]", "--data.ignore", "[id]"],
     "no column matches the data.features patterns"),
])
def test_bad_tables_name_the_file_and_the_column(tmp_path, change, args, message):
    change(mixed_table()).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataFileError) as error:
        load_data(config(tmp_path / "bad.csv", *args))
    assert message in str(error.value) and "bad.csv" in str(error.value)


@pytest.mark.parametrize("args, message", [
    ([], "task table needs data.path"),
    (["--data.path", "t.csv"], "task table needs data.targets"),
    (["--data.path", "t.xlsx", "--data.targets", "kind"], "unsupported extension '.xlsx'"),
    (["--data.path", "t.csv", "--data.targets", "kind", "--data.target_kinds", "{price: regression}"],
     "data.target_kinds names ['price'], which are not in data.targets ['kind']"),
])
def test_bad_table_options_are_named(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    mixed_table().to_csv("t.csv", index=False)
    (tmp_path / "t.xlsx").write_text("not a workbook")
    with pytest.raises((ValueError, DataFileError), match=re.escape(message)):
        load_data(load_config("table-quick", args))


@pytest.mark.slow
def test_a_search_and_training_on_a_csv_nobody_generated_for_it(wine, tmp_path):
    """scikit-learn's wine table: the trained searched network beats the majority class by far."""
    run = search(config(wine, "--data.targets", "target", *SHORT), tmp_path)
    assert json.loads((run / "table.json").read_text())["targets"]["target"]["classes"] == [0, 1, 2]
    trained = train(config(wine, "--data.targets", "target", *SHORT), run / "genotype.json", tmp_path)
    results = json.loads((trained / "results.json").read_text())
    assert results["test"]["test_accuracy"] > 0.8


@pytest.mark.slow
def test_the_cli_runs_a_table_and_rejects_a_bad_one_in_one_line(wine, tmp_path):
    command = [sys.executable, "-m", "darts", "search", "table-quick", "--data.path", str(wine), "--quiet",
               "--runs", str(tmp_path / "runs")]
    ok = subprocess.run([*command, "--data.targets", "[target]", *SHORT, "--log.plots", "false",
                         "--search.order", "first"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*command, "--data.targets", "[cultivar]"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "target column(s) ['cultivar'] missing" in bad.stderr and "wine.csv" in bad.stderr


def test_npz_rows_with_the_linear_family_are_standardised_per_feature(tmp_path):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    np.savez(tmp_path / "cancer.npz", x_train=x[:400], y_train=y[:400], x_test=x[400:], y_test=y[400:])
    linear = load_config("tabular-quick", ["--task", "arrays", "--data", f"{{path: {tmp_path / 'cancer.npz'}}}",
                                           "--model.family", "linear"])
    assert linear.data["rows"] is True
    data = load_data(linear)
    x_train = data.train.tensors[0].numpy()
    assert x_train.shape == (400, 30) and data.in_channels == 30
    np.testing.assert_allclose(x_train, (x[:400] - x[:400].mean(0)) / x[:400].std(0), atol=1e-4)
    conv = load_config("tabular-quick", ["--task", "arrays", "--data", f"{{path: {tmp_path / 'cancer.npz'}}}",
                                         "--model.family", "conv1d"])
    assert conv.data["rows"] is False and load_data(conv).train.tensors[0].shape == (400, 1, 30)
