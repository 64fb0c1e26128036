"""Uno drug response with fully connected models: hand-built from primitives, searched with DARTS, and a
scikit-learn baseline, compared on the same split in one table.

    python examples/uno/uno.py                       # quick: generated data, 45 s on one thread of a 2-core AMD EPYC
    python examples/uno/uno.py --data my.parquet --response auc --cell-columns "GE_*" --drug-columns "DD_*"
    python examples/uno/uno.py --targets regression  # or classification, or both (the default)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score

sys.path.insert(0, str(Path(__file__).parent))
for module in ("uno_data", "hand_built"):  # they register the task 'uno' and the baseline 'uno_hand_built'
    importlib.import_module(module)

from darts.config import load_config, parse_overrides  # noqa: E402
from darts.runs import new_run_dir  # noqa: E402
from darts.workflows import load_data, search, train, train_baseline  # noqa: E402

HERE = Path(__file__).parent


def sklearn_baseline(data, kind: str = "linear") -> dict[str, float]:
    """On the same split: ridge and logistic regression (``linear``), or gradient-boosted trees (``boosting``)."""
    def arrays(split):
        x = np.stack([split[i][0].numpy() for i in range(len(split))])
        ys = [split[i][1] for i in range(len(split))]
        names = [t.name for t in data.targets]
        y = {n: np.array([float(v[n]) if isinstance(v, dict) else float(v) for v in ys]) for n in names}
        return x, y

    (x_train, y_train), (x_test, y_test) = arrays(data.train), arrays(data.test)
    figures = {}
    for target in data.targets:
        prefix = f"{target.name}_" if data.multi_task else ""
        if target.kind == "regression":
            model = Ridge(alpha=100.0) if kind == "linear" else HistGradientBoostingRegressor(random_state=0)
            prediction = model.fit(x_train, y_train[target.name]).predict(x_test)
            figures[f"{prefix}mse"] = mean_squared_error(y_test[target.name], prediction)
            figures[f"{prefix}r2"] = r2_score(y_test[target.name], prediction)
        else:
            model = LogisticRegression(C=0.05, max_iter=2000) if kind == "linear" else \
                HistGradientBoostingClassifier(random_state=0)
            model.fit(x_train, y_train[target.name].astype(int))
            prediction = model.predict(x_test)
            figures[f"{prefix}accuracy"] = accuracy_score(y_test[target.name].astype(int), prediction)
            figures[f"{prefix}macro_f1"] = f1_score(y_test[target.name].astype(int), prediction, average="macro")
    return figures


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Other options: any config key as --section.key VALUE (see 'darts "
                                     "search --help').")
    parser.add_argument("--full", action="store_true", help="the full settings (uno-full.yaml) instead of quick")
    parser.add_argument("--data", help="your CSV or Parquet table (default: generated Uno-like data)")
    parser.add_argument("--response", default="auc", help="the response column of --data (default: auc)")
    parser.add_argument("--cell-columns", default="expr_*", help="glob pattern(s), comma-separated, of the "
                                                                "cell-line feature columns (default: expr_*)")
    parser.add_argument("--drug-columns", default="desc_*", help="glob pattern(s) of the drug feature columns "
                                                                "(default: desc_*)")
    parser.add_argument("--targets", choices=["regression", "classification", "both"], default="both",
                        help="regression of the response, classification of response < 0.5, or both (default)")
    parser.add_argument("--runs", default="runs", help="folder for the run directories (default: runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args, extra = parser.parse_known_args(argv)
    overrides = {"data.targets": args.targets, **parse_overrides(extra)}
    if args.data:
        overrides.update({"data.source": "file", "data.path": args.data, "data.response": args.response,
                          "data.cell_columns": args.cell_columns.split(","),
                          "data.drug_columns": args.drug_columns.split(",")})
    config = load_config(HERE / ("uno-full.yaml" if args.full else "uno-quick.yaml"), overrides)
    data = load_data(config)
    root = new_run_dir(args.runs, "uno-example")
    from rich.console import Console

    console = Console(quiet=args.quiet)
    rows = {}
    start = time.perf_counter()
    hand = train_baseline(config, "uno_hand_built", root, console=console, quiet=args.quiet)
    rows["hand-built from primitives"] = _test_figures(hand, time.perf_counter() - start)
    start = time.perf_counter()
    searched = search(config, root, console=console, quiet=args.quiet)
    trained = train(config, searched / "genotype.json", root, console=console, quiet=args.quiet)
    rows["DARTS searched, trained from scratch"] = _test_figures(trained, time.perf_counter() - start)
    start = time.perf_counter()
    rows["scikit-learn ridge / logistic"] = {**sklearn_baseline(data), "seconds": time.perf_counter() - start}
    start = time.perf_counter()
    rows["scikit-learn gradient boosting"] = {**sklearn_baseline(data, "boosting"),
                                              "seconds": time.perf_counter() - start}
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    table.to_csv(root / "comparison.csv", float_format="%.4f")
    print(f"\nUno test split ({len(data.test)} rows; {config.data['targets']} targets):")
    print(table.to_markdown(floatfmt=".4f"))
    print(f"\nrun directories and comparison.csv: {root}")
    return table


def _test_figures(run: Path, seconds: float) -> dict[str, float]:
    """A train run's test figures: MSE and R2 per regression target, accuracy and macro-F1 per classification."""
    import json

    figures = {k.removeprefix("test_"): v for k, v in json.loads((run / "results.json").read_text())["test"].items()}
    multi = any(k.startswith(("response_", "responsive_")) for k in figures)
    means = {"accuracy", "micro_f1", "macro_f1", "mse", "r2"}
    return {**{k: v for k, v in figures.items() if not k.endswith(("loss", "micro_f1")) and not (multi and k in means)},
            "seconds": seconds}


if __name__ == "__main__":
    main()
