"""The examples run as a user runs them (quick settings, shrunk further), and the Uno data loader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import darts

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES / "uno"))
from uno_data import Uno, load_uno_table, uno_like  # noqa: E402

from darts.data import DataFileError  # noqa: E402


def run(script: str, *args: str, cwd: Path, pythonpath: str = "") -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath or os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, *([str(EXAMPLES / script)] if script else []), *args],
                            capture_output=True, text=True, cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


SHRINK_UNO = ["--data.samples", "400", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--train.epochs", "2", "--quiet"]


@pytest.mark.slow
def test_uno_compares_hand_built_searched_and_scikit_learn(tmp_path):
    out = run("uno/uno.py", *SHRINK_UNO, cwd=tmp_path)
    for row in ("hand-built from primitives", "DARTS searched, trained from scratch", "scikit-learn ridge / logistic",
                "scikit-learn gradient boosting"):
        assert row in out
    (root,) = (tmp_path / "runs").iterdir()
    table = pd.read_csv(root / "comparison.csv", index_col="model")
    assert {"response_mse", "response_r2", "responsive_accuracy", "responsive_macro_f1"} <= set(table.columns)
    assert len(list(root.glob("search-uno-*"))) == 1 and len(list(root.glob("train-uno-*"))) == 2


def _uno_users_table(tmp_path: Path, suffix: str) -> Path:
    table = uno_like(300, cell_features=20, drug_features=6)
    table = table.rename(columns=lambda c: c.replace("expr_", "GE_").replace("desc_", "DD_")).rename(
        columns={"auc": "AUC"})
    path = tmp_path / f"uno{suffix}"
    table.to_parquet(path) if suffix == ".parquet" else table.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_uno_reads_a_users_table_with_both_feature_groups(tmp_path):
    path = _uno_users_table(tmp_path, ".csv")
    out = run("uno/uno.py", "--data", str(path), "--response", "AUC", "--cell-columns", "GE_*",
              "--drug-columns", "DD_*", "--targets", "classification", *SHRINK_UNO, cwd=tmp_path)
    assert "accuracy" in out and "mse" not in out
    (root,) = (tmp_path / "runs").iterdir()
    features = json.loads(next(root.glob("train-uno-*/features.json")).read_text())
    assert len(features["cell"]) == 20 and len(features["drug"]) == 6 and features["response"] == "AUC"


def test_uno_reads_parquet_as_it_reads_csv(tmp_path):
    """The example's loader is the only part that sees the format; the run itself is tested on the CSV above."""
    from_csv, from_parquet = (load_uno_table(_uno_users_table(tmp_path, suffix), "AUC", ["GE_*"], ["DD_*"])
                              for suffix in (".csv", ".parquet"))
    pd.testing.assert_frame_equal(from_csv[0], from_parquet[0], check_dtype=False)
    assert from_csv[1:] == from_parquet[1:] and len(from_csv[1]) == 20 and len(from_csv[2]) == 6


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="auc"), "response column(s) ['auc'] missing; the file has columns: cell_line, drug"),
    (lambda t: t.drop(columns=[c for c in t if c.startswith("desc_")]), "no column matches the drug feature patterns"),
    (lambda t: t.assign(desc_0="high"), "drug feature columns must be numeric; not numeric: ['desc_0']"),
    (lambda t: t.assign(auc=None), "response column 'auc' must be finite numbers with no empty cells"),
    (lambda t: t.iloc[:0], "the table has a header but no rows"),
    (lambda t: t.assign(expr_1=[float("nan")] + [0.0] * (len(t) - 1)), "NaN or infinite value(s)"),
    (lambda t: t.assign(auc=[float("inf")] + [0.5] * (len(t) - 1)), "must be finite numbers"),
])
def test_uno_bad_tables_are_named(tmp_path, change, message):
    path = tmp_path / "uno.csv"
    change(uno_like(50, cell_features=5, drug_features=3)).to_csv(path, index=False)
    with pytest.raises(DataFileError) as error:
        load_uno_table(path, "auc", ["expr_*"], ["desc_*"])
    assert message in str(error.value) and "uno.csv" in str(error.value)


def test_uno_bad_patterns_and_formats(tmp_path):
    path = tmp_path / "uno.csv"
    uno_like(50, cell_features=5, drug_features=3).to_csv(path, index=False)
    with pytest.raises(DataFileError, match=r"columns \['desc_0'\] match both the cell and the drug patterns"):
        load_uno_table(path, "auc", ["expr_*", "desc_0"], ["desc_*"])
    path.with_suffix(".xlsx").write_text("x")
    with pytest.raises(DataFileError, match="unsupported extension '.xlsx'"):
        load_uno_table(path.with_suffix(".xlsx"), "auc", ["expr_*"], ["desc_*"])
    with pytest.raises(DataFileError, match="file not found"):
        load_uno_table(tmp_path / "none.csv", "auc", ["expr_*"], ["desc_*"])


def test_uno_targets_single_or_both():
    for targets, names, multi in (("regression", ["response"], False), ("classification", ["responsive"], False),
                                  ("both", ["response", "responsive"], True)):
        data = Uno().load(Uno.Options(samples=60, targets=targets), seed=0)
        assert [t.name for t in data.targets] == names and data.multi_task == multi
        assert data.in_channels == 942 + 128 and data.stem(8)(data.example_input(2)).shape == (2, 8)


@pytest.mark.slow
def test_custom_primitives_are_searched_beside_built_in_ones(tmp_path):
    out = run("advanced/custom_primitive.py", "--search.epochs", "1", "--search.warmup_epochs", "0",
              "--search.order", "first", "--model.nodes", "2", "--train.epochs", "1", "--log.plots", "false",
              cwd=tmp_path)
    assert "gated_conv_3, se_conv_3" in out and "searched network, trained from scratch" in out
    assert "logistic regression on the pixels" in out


@pytest.mark.slow
def test_a_broken_primitive_fails_when_the_space_is_built(tmp_path):
    out = run("advanced/broken_primitive.py", cwd=tmp_path)
    assert "primitive conv1d/forgets_padding at stride 1 with 8 channels returned shape (2, 8, 5) for input " \
           "(2, 8, 7); expected (2, 8, 7)" in out
    assert "primitive conv1d/doubles_channels_when_reducing at stride 2 with 8 channels returned shape " \
           "(2, 16, 4) for input (2, 8, 7); expected (2, 8, 4)" in out


def _install(tmp_path: Path, package: str) -> str:
    """pip-install an example package (a copy) into a folder of its own; the PYTHONPATH that sees it and darts."""
    source, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(EXAMPLES / "advanced" / package, source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True)
    return f"{target}:{Path(darts.__file__).parents[1]}"


@pytest.mark.slow
def test_the_example_plugin_package_installs_and_is_searched(tmp_path):
    pythonpath = _install(tmp_path, "darts_gated")
    listing = json.loads(run("", "-m", "darts", "plugins", "--json", cwd=tmp_path, pythonpath=pythonpath))
    rows = {(r["family"], r["primitive"]): r for r in listing["primitives"]}
    for family in ("conv1d", "conv2d"):
        assert rows[family, "gated_conv_3"]["distribution"] == "darts-gated"
        assert rows[family, "se_conv_3"]["version"] == "1.0.0"
    run("", "-m", "darts", "search", "digits-quick", "--model.primitives", "[skip_connect, gated_conv_3, se_conv_3]",
        "--model.channels", "4", "--search.epochs", "1", "--search.order", "first", "--data.test_fraction", "0.9",
        "--search.warmup_epochs", "0", "--log.plots", "false", "--runs", str(tmp_path / "runs"), "--quiet",
        cwd=tmp_path, pythonpath=pythonpath)
    (search_run,) = (tmp_path / "runs").iterdir()
    genotype = json.loads((search_run / "genotype.json").read_text())
    assert genotype["primitives"] == ["skip_connect", "gated_conv_3", "se_conv_3"]
    # the in-process example finds the installed primitives and registers nothing twice (its search: above)
    out = run("", "-c", "import runpy, sys; runpy.run_path(sys.argv[1])['register_in_process']()",
              str(EXAMPLES / "advanced" / "custom_primitive.py"), cwd=tmp_path, pythonpath=pythonpath)
    assert "conv2d/gated_conv_3: already there (the darts-gated plugin is installed)" in out


@pytest.mark.slow
def test_the_uno_example_prints_its_whole_description(tmp_path):
    out = run("uno/uno.py", "--help", cwd=tmp_path)
    assert "compared on the same split in one table." in out and "--targets regression" in out


@pytest.mark.slow
def test_the_example_strategy_package_installs_and_is_searched_with(tmp_path):
    pythonpath = _install(tmp_path, "darts_sparsemax")
    listing = json.loads(run("", "-m", "darts", "plugins", "--json", cwd=tmp_path, pythonpath=pythonpath))
    (row,) = [r for r in listing["strategies"] if r["strategy"] == "sparsemax"]
    assert (row["distribution"], row["version"]) == ("darts-sparsemax", "1.0.0")
    run("", "-m", "darts", "search", "tabular-quick", "--search.strategy", "sparsemax",
        "--search.strategy_options.temperature", "0.01", "--data.samples", "256", "--search.epochs", "2",
        "--search.warmup_epochs", "0", "--search.order", "first", "--runs", str(tmp_path / "runs"), "--quiet",
        cwd=tmp_path, pythonpath=pythonpath)
    (search_run,) = (tmp_path / "runs").iterdir()
    results = json.loads((search_run / "results.json").read_text())
    assert results["strategy"] == "sparsemax" and results["strategy_options"] == {"temperature": 0.01}
    weights = json.loads((search_run / "alphas.jsonl").read_text().splitlines()[-1])["weights"]["normal"]
    assert all(abs(sum(row) - 1) < 1e-5 for row in weights)
    # sparsemax, by hand: [1, 0.5, -1] -> threshold (1 + 0.5 - 1) / 2 = 0.25 -> [0.75, 0.25, 0]
    out = run("", "-c", "import torch; from darts_sparsemax.strategy import sparsemax; "
              "print(sparsemax(torch.tensor([1.0, 0.5, -1.0])).tolist())", cwd=tmp_path, pythonpath=pythonpath)
    assert out.strip() == "[0.75, 0.25, 0.0]"
