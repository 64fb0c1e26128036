"""Benchmarks: search, train the derived genotypes from scratch, compare with random genotypes of the same
space and a hand-designed baseline, all trained with the same budget, in one table.

``darts bench p3b5`` runs it on the P3B5 task. The benchmark's directory holds every sub-run (searches and
trainings, each a full run directory) and the table as ``results.csv``, ``results.md`` and ``results.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

import darts
from darts import distributed
from darts.config import RunConfig
from darts.io import atomic_write_json, atomic_write_text
from darts.models import build_search_network
from darts.runs import RunLog, new_run_dir
from darts.workflows import load_data, search, train, train_baseline


def benchmark(config: RunConfig, runs: str | Path = "runs", console: Console | None = None, quiet: bool = False,
              name: str | None = None) -> Path:
    """Run the comparison of ``config.bench`` and return the benchmark's directory."""
    data = load_data(config)  # bad files fail here, before any directory exists
    targets = [t.name for t in data.targets if t.kind == "classification"]
    if not targets:
        raise ValueError(f"task {config.task!r} has no classification target to benchmark")
    build_search_network(config.model, data)  # so does a search space that does not fit the task
    further = {family: config.for_family(family) for family in config.bench.families}
    for family_config in further.values():
        build_search_network(family_config.model, data)
    bench_dir = new_run_dir(runs, f"bench-{name or config.task}")
    main = distributed.is_main()  # under torchrun every rank runs the steps; rank 0 writes
    if main:
        atomic_write_text(bench_dir / "config.yaml", config.to_yaml())
        atomic_write_json(bench_dir / "run.json", {"command": "bench", "darts": darts.__version__,
                                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    log = RunLog(bench_dir, console, quiet)
    searches = [(config, "DARTS", order) for order in config.bench.orders]
    searches += [(family_config, f"DARTS {family} cell", order) for family, family_config in further.items()
                 for order in config.bench.orders]
    plan = [f"{label} search ({order} order) and train" for _, label, order in searches]
    plan += ["random genotype"] * config.bench.random_genotypes + ([config.bench.baseline] if config.bench.baseline else [])
    log.event("start", f"benchmark {name or config.task}: {', '.join(plan)} -> {bench_dir}", plan=plan)
    rows = [_majority_row(data, targets)]
    step = 0

    def announce(what: str) -> None:
        nonlocal step
        step += 1
        log.event("step", f"[{step}/{len(plan)}] {what}", step=step)

    for base, label, order in searches:
        announce(f"search with {order}-order DARTS ({base.model.family}), then train its genotype")
        ordered = base.model_copy(update={"search": base.search.model_copy(update={"order": order})}, deep=True)
        search_dir = search(ordered, bench_dir, console=console, quiet=quiet)
        search_seconds = json.loads((search_dir / "results.json").read_text())["seconds"]
        train_dir = train(ordered, search_dir / "genotype.json", bench_dir, console=console, quiet=quiet)
        rows.append(_row(f"{label} {order} order", train_dir, targets, search_seconds, search_dir))
    supernet = build_search_network(config.model, data)
    for index in range(config.bench.random_genotypes):
        announce(f"train random genotype {index + 1}")
        genotype = supernet.random_genotype(seed=config.seed + index)
        if main:
            genotype.save(bench_dir / f"random_genotype_{index + 1}.json")
        distributed.barrier()
        train_dir = train(config, bench_dir / f"random_genotype_{index + 1}.json", bench_dir, console=console,
                          quiet=quiet)
        rows.append(_row(f"random genotype {index + 1}" if config.bench.random_genotypes > 1 else "random genotype",
                         train_dir, targets))
    if config.bench.baseline:
        announce(f"train the {config.bench.baseline} baseline")
        train_dir = train_baseline(config, config.bench.baseline, bench_dir, console=console, quiet=quiet)
        rows.append(_row(f"{config.bench.baseline} (hand-designed)", train_dir, targets))

    table = pd.DataFrame(rows).set_index("model")
    if main:
        atomic_write_text(bench_dir / "results.csv", table.to_csv(float_format="%.4f"))
        atomic_write_text(bench_dir / "results.md", _markdown(table) + "\n")
        atomic_write_json(bench_dir / "results.json", {"rows": table.reset_index().to_dict(orient="records")})
    text = f"results of {bench_dir} (test split):\n" + _printable(table, targets)
    log.event("finish", text, echo=False)
    if console is not None and main:  # the result itself, printed in quiet mode too
        console.print(text, highlight=False, soft_wrap=True)
    return bench_dir


def _row(model: str, train_dir: Path, targets: list[str], search_seconds: float | None = None,
         search_dir: Path | None = None) -> dict[str, Any]:
    results = json.loads((train_dir / "results.json").read_text())
    test = results["test"]
    row: dict[str, Any] = {"model": model}
    for task in targets:
        prefix = f"test_{task}_" if f"test_{task}_accuracy" in test else "test_"
        row[f"{task} accuracy"] = test[f"{prefix}accuracy"]
        row[f"{task} micro-F1"] = test[f"{prefix}micro_f1"]
        row[f"{task} macro-F1"] = test[f"{prefix}macro_f1"]
    for metric in ("accuracy", "micro-F1", "macro-F1"):
        row[f"mean {metric}"] = sum(row[f"{task} {metric}"] for task in targets) / len(targets)
    row["parameters"] = results["parameters"]["model"]
    row["search seconds"] = search_seconds
    row["train seconds"] = results["seconds"]
    row["run"] = str(train_dir.name) if search_dir is None else f"{search_dir.name}, {train_dir.name}"
    return row


def _majority_row(data, targets: list[str]) -> dict[str, Any]:
    """Always the training split's most frequent class: the floor every model must clear."""
    from sklearn.metrics import f1_score

    labels, train_labels = _labels(data.test, targets), _labels(data.train, targets)
    row: dict[str, Any] = {"model": "majority class"}
    for task in targets:
        truth = labels[task]
        guess = np.full_like(truth, np.bincount(train_labels[task]).argmax())
        row[f"{task} accuracy"] = float((guess == truth).mean())
        row[f"{task} micro-F1"] = float(f1_score(truth, guess, average="micro", zero_division=0))
        row[f"{task} macro-F1"] = float(f1_score(truth, guess, average="macro", zero_division=0))
    for metric in ("accuracy", "micro-F1", "macro-F1"):
        row[f"mean {metric}"] = sum(row[f"{task} {metric}"] for task in targets) / len(targets)
    row.update({"parameters": 0, "search seconds": None, "train seconds": None, "run": ""})
    return row


def _labels(split, targets: list[str]) -> dict[str, np.ndarray]:
    rows = [split[i][1] for i in range(len(split))]
    return {task: np.array([int(y[task] if isinstance(y, dict) else y) for y in rows]) for task in targets}


def _printable(table: pd.DataFrame, targets: list[str]) -> str:
    """The table without the run column, one block per task's metrics and one for the rest (fits a terminal)."""
    shown = table.drop(columns="run")
    blocks = [shown[[f"{t} accuracy", f"{t} micro-F1", f"{t} macro-F1"]] for t in targets]
    blocks.append(shown[[c for c in shown.columns if not any(c.startswith(f"{t} ") for t in targets)]])
    return "\n\n".join(_markdown(block) for block in blocks)


def _markdown(table: pd.DataFrame) -> str:
    """Metrics with 4 decimals, parameters as whole numbers, seconds with 1 decimal, blanks for n/a."""
    def cell(column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if column == "parameters":
            return f"{int(value):,}"
        if column.endswith("seconds"):
            return f"{value:.1f}"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    shown = pd.DataFrame({c: [cell(c, v) for v in table[c]] for c in table.columns}, index=table.index)
    return shown.to_markdown(disable_numparse=True, colalign=["left"] + ["right"] * len(shown.columns))
