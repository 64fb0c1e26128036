"""Benchmarks: search, train the derived genotypes from scratch, compare with random genotypes of the same
space and a hand-designed baseline, all trained with the same budget, in one table.

``darts bench p3b5`` runs it on the P3B5 task. The benchmark's directory holds every sub-run (searches and
trainings, each a full run directory) and the table as ``results.csv``, ``results.md`` and ``results.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

import darts
from darts import distributed
from darts.config import RunConfig
from darts.data.datasets import split_labels
from darts.io import atomic_write_json, atomic_write_text
from darts.device import resolve as resolve_device
from darts.assemble import build_search_network
from darts.runs import RunLog, lock_run_dir, new_run_dir, unlock_run_dir
from darts.search_plan import plan_search
from darts.training.objective import higher_is_better
from darts.workflows import _load_genotype, load_data, search, train, train_baseline


def benchmark(config: RunConfig | None, runs: str | Path = "runs", console: Console | None = None,
              quiet: bool = False, name: str | None = None, resume: str | Path | None = None) -> Path:
    """Run the comparison of ``config.bench`` with ``bench.seeds`` seeds and return the benchmark's directory.

    ``resume``: a killed benchmark's directory, continued with its saved configuration: finished sub-runs are
    reused, the interrupted one resumes from its checkpoint, the rest run; the table is the same as an
    uninterrupted run's."""
    distributed.init_from_environment()  # a script under torchrun: one benchmark over its processes
    if resume is not None:
        config, name = _resumable(Path(resume))
    resolve_device(config.device)  # a missing GPU fails here, before any directory exists
    for strategy in (None, *config.bench.strategies):  # an unknown or unfit strategy fails here too
        for order in config.bench.orders:
            changes = {"order": order, **({"strategy": strategy, "strategy_options": {}} if strategy else {})}
            plan_search(config.model_copy(update={"search": config.search.model_copy(update=changes)}))
    data = load_data(config)  # bad files fail here too
    targets, metrics = scored_targets(data)
    if not targets:
        raise ValueError(f"task {config.task!r} has no classification or regression target to benchmark")
    build_search_network(config.model, data)  # so does a search space that does not fit the task
    further = {family: config.for_family(family) for family in config.bench.families}
    for family_config in further.values():
        build_search_network(family_config.model, data)
    transfer = _transfer_genotype(config)
    if config.bench.lr_grid is not None and (not config.bench.lr_grid or config.train.valid_fraction <= 0
                                             or min(config.bench.lr_grid) <= 0):
        raise ValueError("bench.lr_grid picks each row's learning rate on its validation split: give positive "
                         "learning rates and set train.valid_fraction above 0 (now "
                         f"{config.train.valid_fraction:g}), or set bench.lr_grid null")
    bench_dir = Path(resume) if resume is not None else new_run_dir(runs, f"bench-{name or config.task}")
    main = distributed.is_main()  # under torchrun every rank runs the steps; rank 0 writes
    if main:
        lock_run_dir(bench_dir)
    if main and resume is None:
        atomic_write_text(bench_dir / "config.yaml", config.to_yaml())
        atomic_write_json(bench_dir / "run.json", {"command": "bench", "benchmark": name or config.task,
                                                   "darts": darts.__version__,
                                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    log = RunLog(bench_dir, console, quiet)
    if resume is not None:
        log.event("resume", f"resumed benchmark {bench_dir}: finished sub-runs are reused")
    quietly = {"console": console, "quiet": quiet}

    def sub_run(run_name: str, start, command: str = "train") -> Path:
        """``bench_dir/run_name``: reused if it finished, resumed if it was interrupted, else started."""
        path = bench_dir / run_name
        if (path / "results.json").exists():
            return path
        if _started(path):
            return search(None, resume=path, **quietly) if command == "search" else _resume_train(path, quietly)
        if path.exists() and main:  # made, then killed before its run began: nothing in it to keep
            shutil.rmtree(path)
        distributed.barrier()
        return start(run_name)

    def trained(run_name: str, run_config, start) -> tuple[Path, float]:
        """A row's training: ``start(config, name)`` once with ``train.lr``, or once per ``bench.lr_grid`` value
        (sub-runs ``run_name-lrX``), keeping the one whose final validation monitor is best; (its folder, lr)."""
        if config.bench.lr_grid is None:
            return sub_run(run_name, lambda n: start(run_config, n)), run_config.train.lr
        tried = []
        for lr in config.bench.lr_grid:
            changed = run_config.model_copy(update={"train": run_config.train.model_copy(update={"lr": lr})},
                                            deep=True)
            path = sub_run(f"{run_name}-lr{lr:g}", lambda n: start(changed, n))
            results = json.loads((path / "results.json").read_text())
            value = results["final"].get(results["monitor"], float("nan"))
            tried.append((value if higher_is_better(results["monitor"]) else -value, lr, path))
        value, lr, path = max(tried, key=lambda t: (t[0] == t[0], t[0]))  # NaN last
        log.event("lr", f"  {run_name}: train.lr {lr:g} kept (validation {abs(value):.4f}; tried "
                  f"{', '.join(f'{t[1]:g}' for t in tried)})", run=run_name, lr=lr,
                  tried={f"{t[1]:g}": abs(t[0]) for t in tried})
        return path, lr

    base = "DARTS" if config.search.strategy == "darts" else config.search.strategy
    searches = [(config, base, order, None) for order in config.bench.orders]
    searches += [(family_config, f"{base} {family} cell", order, None) for family, family_config in further.items()
                 for order in config.bench.orders]
    searches += [(config, strategy, order, strategy) for strategy in config.bench.strategies
                 for order in config.bench.orders]
    plan = [f"{label} search ({order} order) and train" for _, label, order, _ in searches]
    plan += ["random genotype"] * config.bench.random_genotypes
    plan += [f"{transfer} transferred"] if transfer else []
    plan += [config.bench.baseline] if config.bench.baseline else []
    seeds = [config.seed + i for i in range(config.bench.seeds)]
    log.event("start", f"benchmark {name or config.task}, seeds {', '.join(map(str, seeds))}: {', '.join(plan)} "
              f"-> {bench_dir}", plan=plan, seeds=seeds)
    step = 0

    def announce(what: str, seed: int) -> None:
        nonlocal step
        step += 1
        log.event("step", f"[{step}/{len(plan) * len(seeds)}] seed {seed}: {what}", step=step, seed=seed)

    rows = []
    for seed in seeds:
        seeded = config.model_copy(update={"seed": seed}, deep=True)
        seed_data = data if seed == config.seed else load_data(seeded)
        rows.append({**_floor_row(seed_data, targets, metrics), "seed": seed, "kind": "majority"})
        for source, label, order, strategy in searches:
            announce(f"search with {order}-order {label} ({source.model.family}), then train its genotype", seed)
            changes = {"order": order, **({"strategy": strategy, "strategy_options": {}} if strategy else {})}
            ordered = source.model_copy(update={"seed": seed, "search": source.search.model_copy(update=changes)},
                                        deep=True)
            row_name = (f"{source.model.family}-" if source is not config else "") + \
                (f"{strategy}-" if strategy else "") + f"{order}-order-seed{seed}"
            search_dir = sub_run(f"search-{row_name}", lambda n: search(ordered, bench_dir, run_name=n, **quietly),
                                 "search")
            searched = json.loads((search_dir / "results.json").read_text())
            train_dir, lr = trained(f"train-{row_name}", ordered, lambda c, n: train(
                c, search_dir / "genotype.json", bench_dir, run_name=n, **quietly))
            row = {**_row(f"{label} {order} order", train_dir, targets, metrics, searched["seconds"], search_dir),
                   "train lr": lr}
            verdict = searched.get("verdict") or {}
            last = (searched.get("diagnostics") or [{}])[-1]
            resource = searched.get("resource")
            rows.append({**row, "seed": seed, "kind": "searched", "verdict": verdict.get("verdict"),
                         "decisive edges": last.get("decisive_edges"),
                         "parameter-free share": last.get("parameter_free_share"),
                         **({f"searched {resource['measure']}": resource["genotype"],
                             f"target {resource['measure']}": resource["target"]} if resource else {})})
        supernet = build_search_network(seeded.model, seed_data)
        for index in range(config.bench.random_genotypes):
            announce(f"train random genotype {index + 1}", seed)
            genotype = supernet.random_genotype(seed=seed * 1000 + index)
            path = bench_dir / f"random_genotype_seed{seed}_{index + 1}.json"
            if main and not path.exists():
                genotype.save(path)
            distributed.barrier()
            train_dir, lr = trained(f"train-random-{index + 1}-seed{seed}", seeded,
                                    lambda c, n, path=path: train(c, path, bench_dir, run_name=n, **quietly))
            rows.append({**_row("random genotype", train_dir, targets, metrics), "train lr": lr, "seed": seed,
                         "kind": "random"})
        if transfer:
            announce(f"train {transfer} as {config.model.family}", seed)
            train_dir, lr = trained(f"train-{transfer.lower()}-seed{seed}", seeded, lambda c, n: train(
                c, transfer, bench_dir, genotype_family=config.model.family, run_name=n, **quietly))
            rows.append({**_row(f"{transfer} (transferred)", train_dir, targets, metrics), "train lr": lr, "seed": seed,
                         "kind": "transfer"})
        if config.bench.baseline:
            announce(f"train the {config.bench.baseline} baseline", seed)
            train_dir, lr = trained(f"train-{config.bench.baseline}-seed{seed}", seeded, lambda c, n: train_baseline(
                c, config.bench.baseline, bench_dir, run_name=n, **quietly))
            rows.append({**_row(f"{config.bench.baseline} (hand-designed)", train_dir, targets, metrics),
                         "train lr": lr,
                         "seed": seed, "kind": "baseline"})

    table = pd.DataFrame(rows).set_index("model")
    summary, wins = summarise(table)
    if main:
        atomic_write_text(bench_dir / "results.csv", table.to_csv(float_format="%.4f"))
        atomic_write_text(bench_dir / "results.md", _summary_markdown(summary, wins, len(seeds), metrics) + "\n\n"
                          + "Every run:\n\n" + _markdown(table) + "\n")
        atomic_write_json(bench_dir / "results.json", {
            "seeds": seeds, "rows": table.reset_index().to_dict(orient="records"),
            "summary": summary.reset_index().to_dict(orient="records"), "wins_over_random": wins})
    runs_shown = table if len(seeds) == 1 else table.groupby(level="model", sort=False)[
        [c for c in table.columns if c.endswith(f" {metrics[0]}")]].mean()  # several seeds: each task's mean
    # one table where the summary says it all (one target, one seed); else each run or each row's means too
    per_run = "" if len(seeds) == 1 and len(targets) == 1 else (
        _printable(table, targets, metrics) if len(seeds) == 1 else _markdown(runs_shown)) + "\n\n"
    text = (f"results of {bench_dir} (test split, {len(seeds)} seed{'s' if len(seeds) > 1 else ''}):\n"
            + per_run + _summary_markdown(summary, wins, len(seeds), metrics))
    log.event("finish", text, echo=False)
    unlock_run_dir(bench_dir)
    log.close()
    if console is not None and main:  # the result itself, printed in quiet mode too
        console.print(text, highlight=False, soft_wrap=True)
    return bench_dir


def _resumable(bench_dir: Path) -> tuple[RunConfig, str]:
    """The saved configuration and name of a benchmark directory that has not finished."""
    from darts.config import load_config
    from darts.workflows import RunDirectoryError

    info_path = bench_dir / "run.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if info.get("command") != "bench":
        raise RunDirectoryError(f"{bench_dir} is not a benchmark directory (its run.json does not say bench); "
                                "--resume takes the folder 'darts bench' created")
    if (bench_dir / "results.json").exists():
        raise RunDirectoryError(f"{bench_dir} finished already (results.json exists); start a new benchmark instead")
    return load_config(bench_dir / "config.yaml"), info.get("benchmark") or bench_dir.name.split("-")[1]


def _started(run_dir: Path) -> bool:
    """Whether a sub-run got far enough to be resumed: its run.json written, and a genotype's training its
    genotype.json too."""
    if not (run_dir / "run.json").exists():
        return False
    info = json.loads((run_dir / "run.json").read_text())
    return info.get("network", "genotype") != "genotype" or info["command"] == "search" \
        or (run_dir / "genotype.json").exists()


def _resume_train(path: Path, quietly: dict) -> Path:
    """Resume an interrupted training sub-run, a genotype's or a baseline's."""
    network = json.loads((path / "run.json").read_text()).get("network", "genotype")
    if network == "genotype":
        return train(None, resume=path, **quietly)
    return train_baseline(None, resume=path, **quietly)


def _transfer_genotype(config: RunConfig) -> str | None:
    """``bench.transfer`` when its cells fit ``model.family`` (same primitive names), else None."""
    from darts.genotype import GenotypeError

    if not config.bench.transfer:
        return None
    try:
        _load_genotype(config.bench.transfer, config.model.family)
    except (GenotypeError, ValueError, KeyError):
        return None
    return config.bench.transfer


#: what a benchmark reports for each classification target; the first is its score
CLASSIFICATION_METRICS = ("accuracy", "micro-F1", "macro-F1")
#: the same for a regression target (a task without classification targets): R2 is the score
REGRESSION_METRICS = ("R2", "MSE")
_RESULT_KEYS = {"accuracy": "accuracy", "micro-F1": "micro_f1", "macro-F1": "macro_f1", "R2": "r2", "MSE": "mse"}


def scored_targets(data) -> tuple[list[str], tuple[str, ...]]:
    """The targets a benchmark scores and the metrics it reports for each: the classification targets by
    accuracy, micro- and macro-F1, or for a task without any, its regression targets by R2 and mean squared
    error."""
    for kind, metrics in (("classification", CLASSIFICATION_METRICS), ("regression", REGRESSION_METRICS)):
        targets = [t.name for t in data.targets if t.kind == kind]
        if targets:
            return targets, metrics
    return [], CLASSIFICATION_METRICS


def score_column(table: pd.DataFrame) -> str:
    """The column that ranks a benchmark's rows: ``mean accuracy``, or ``mean R2`` for regression."""
    return "mean accuracy" if "mean accuracy" in table.columns else "mean R2"


def summarise(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Mean and standard deviation over the runs of each row (random genotypes pooled over seeds and draws),
    and for each searched row its wins over random genotypes: seeds where it beat the mean of that seed's
    random genotypes on the score (:func:`score_column`), out of the seeds."""
    metrics = [c for c in table.columns if c.startswith("mean ")]
    grouped = table.groupby(level="model", sort=False)
    summary = grouped[metrics].agg(["mean", "std"])
    summary.columns = [f"{metric} {stat}" for metric, stat in summary.columns]
    summary["runs"] = grouped.size()
    summary["parameters"] = grouped["parameters"].mean()
    for column in ("search seconds", "train seconds", "decisive edges", "parameter-free share",
                   *[c for c in table.columns if c.startswith(("searched ", "target "))]):
        if column in table.columns:
            summary[column] = grouped[column].mean()
    if "verdict" in table.columns:
        summary["decisive runs"] = grouped["verdict"].agg(
            lambda v: f"{int((v == 'decisive').sum())}/{int(v.notna().sum())}" if v.notna().any() else None)
    wins: dict[str, str] = {}
    random, score = table[table["kind"] == "random"], score_column(table)
    if len(random):
        per_seed = random.groupby("seed")[score].mean()
        for model, runs in table[table["kind"] == "searched"].groupby(level="model", sort=False):
            paired = [(value, per_seed[seed]) for seed, value in zip(runs["seed"], runs[score]) if seed in per_seed]
            wins[model] = f"{sum(a > r for a, r in paired)}/{len(paired)}"
    return summary, wins


def _summary_markdown(summary: pd.DataFrame, wins: dict[str, str], seeds: int,
                      metrics: tuple[str, ...] = CLASSIFICATION_METRICS) -> str:
    """The mean +- std table, with the searched rows' wins over random genotypes."""
    def pm(mean: float, std: float) -> str:
        return f"{mean:.4f}" if np.isnan(std) else f"{mean:.4f} +- {std:.4f}"

    shown = pd.DataFrame(index=summary.index)
    for metric in (metrics[0], metrics[-1]):
        means, stds = summary[f"mean {metric} mean"], summary[f"mean {metric} std"]
        shown[f"mean {metric}"] = [pm(m, s) for m, s in zip(means, stds)]
    shown["runs"] = summary["runs"].astype(int).astype(str)
    shown["wins over random"] = [wins.get(model, "") for model in summary.index]
    if "decisive runs" in summary.columns:
        shown["decisive searches"] = summary["decisive runs"].fillna("")
    if "parameter-free share" in summary.columns:
        shown["parameter-free genes"] = ["" if np.isnan(v) else f"{v:.0%}" for v in summary["parameter-free share"]]
    shown["parameters"] = [f"{int(v):,}" if v > 0 else "" for v in summary["parameters"]]
    for column in [c for c in summary.columns if c.startswith(("searched ", "target "))]:  # search.resource
        shown[column] = ["" if np.isnan(v) else f"{v:,.0f}" for v in summary[column]]
    if "search seconds" in summary.columns:
        shown["search s"] = ["" if np.isnan(v) else f"{v:.0f}" for v in summary["search seconds"]]
    table = shown.to_markdown(disable_numparse=True, colalign=["left"] + ["right"] * len(shown.columns))
    return f"mean over {seeds} seed{'s' if seeds > 1 else ''} (+- standard deviation over the runs):\n\n" + table


def _with_means(row: dict[str, Any], targets: list[str], metrics: tuple[str, ...]) -> dict[str, Any]:
    for metric in metrics:
        row[f"mean {metric}"] = sum(row[f"{task} {metric}"] for task in targets) / len(targets)
    return row


def _row(model: str, train_dir: Path, targets: list[str], metrics: tuple[str, ...],
         search_seconds: float | None = None, search_dir: Path | None = None) -> dict[str, Any]:
    results = json.loads((train_dir / "results.json").read_text())
    test = results["test"]
    row: dict[str, Any] = {"model": model}
    for task in targets:
        prefix = f"test_{task}_" if f"test_{task}_{_RESULT_KEYS[metrics[0]]}" in test else "test_"
        for metric in metrics:
            row[f"{task} {metric}"] = test[f"{prefix}{_RESULT_KEYS[metric]}"]
    _with_means(row, targets, metrics)
    row["parameters"] = results["parameters"]["model"]
    row["search seconds"] = search_seconds
    row["train seconds"] = results["seconds"]
    row["run"] = str(train_dir.name) if search_dir is None else f"{search_dir.name}, {train_dir.name}"
    return row


def _floor_row(data, targets: list[str], metrics: tuple[str, ...]) -> dict[str, Any]:
    """The floor every model must clear: always the training split's most frequent class (classification),
    or always its mean (regression; an R2 near 0)."""
    from sklearn.metrics import f1_score

    labels, train_labels = _labels(data.test, targets), _labels(data.train, targets)
    regression = metrics == REGRESSION_METRICS
    row: dict[str, Any] = {"model": "mean predictor" if regression else "majority class"}
    for task in targets:
        truth = labels[task]
        if regression:
            error = float(((truth - train_labels[task].mean()) ** 2).mean())
            row.update({f"{task} R2": 1 - error / float(truth.var()), f"{task} MSE": error})
            continue
        guess = np.full_like(truth, np.bincount(train_labels[task]).argmax())
        row[f"{task} accuracy"] = float((guess == truth).mean())
        row[f"{task} micro-F1"] = float(f1_score(truth, guess, average="micro", zero_division=0))
        row[f"{task} macro-F1"] = float(f1_score(truth, guess, average="macro", zero_division=0))
    _with_means(row, targets, metrics)
    row.update({"parameters": 0, "search seconds": None, "train seconds": None, "run": ""})
    return row


def _labels(split, targets: list[str]) -> dict[str, np.ndarray]:
    """Each target's labels: class indices as int64, regression values as float64."""
    return {task: labels.numpy().astype(np.float64 if labels.is_floating_point() else np.int64)
            for task, labels in split_labels(split, targets).items()}


def _printable(table: pd.DataFrame, targets: list[str], metrics: tuple[str, ...]) -> str:
    """The table without the run column, one block per task's metrics and one for the rest (fits a terminal)."""
    shown = table.drop(columns=[c for c in ("run", "kind") if c in table.columns])
    blocks = [shown[[f"{t} {metric}" for metric in metrics]] for t in targets]
    blocks.append(shown[[c for c in shown.columns if not any(c.startswith(f"{t} ") for t in targets)]])
    return "\n\n".join(_markdown(block) for block in blocks)


def _markdown(table: pd.DataFrame) -> str:
    """Metrics with 4 decimals, parameters as whole numbers, seconds with 1 decimal, blanks for n/a."""
    def cell(column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if column in ("parameters", "seed"):
            return f"{int(value):,}"
        if column.endswith("seconds"):
            return f"{value:.1f}"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    shown = pd.DataFrame({c: [cell(c, v) for v in table[c]] for c in table.columns}, index=table.index)
    return shown.to_markdown(disable_numparse=True, colalign=["left"] + ["right"] * len(shown.columns))
