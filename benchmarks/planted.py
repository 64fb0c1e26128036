"""The planted architecture: how much of a known teacher cell does the search recover?

    OMP_NUM_THREADS=1 python benchmarks/planted.py --seeds 3 [--selection alpha,perturbation|none]
        [--strategies darts,fair-darts,...] [--changes] [--preset planted-full] [--out DIR] [overrides]

The ``planted`` task labels Gaussian sequences with a fixed random teacher network built from a known conv1d
genotype (``darts.data.planted``). For each selection rule (and each search strategy) this runs
``darts.bench.benchmark`` on the preset (search, train the genotype from scratch; random genotypes of the
same space trained alike; the same seeds and data), then scores every genotype against the teacher's cell: the
share of the teacher's (primitive, input) genes found in the same node, of its inputs and of its primitives,
beside the expectation for a random genotype and the random genotypes' own scores. The teacher's own cell is
trained alike as a control (the bench's transferred row). ``--changes`` adds the sharper control: the teacher's
cell against every cell one gene away from it, trained alike. Recovery can be expected only where the
teacher's cell beats them. Prints the tables and writes them as ``planted.md`` and ``planted.json`` in the
output folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


#: the teacher's genotype, registered in-process so that the benchmark trains it as its transferred row
TEACHER = "PLANTED_TEACHER"


def run(selection: str, seeds: int, out: Path, quiet: bool, overrides: dict,
        strategies: tuple[str, ...] = (), preset: str = "planted-quick") -> list[dict]:
    """One benchmark of ``planted-quick`` with this selection: DARTS and each further strategy searched, random
    genotypes and the teacher's own cell trained alike; every genotype scored against the teacher's cell."""
    from rich.console import Console

    from darts import register_genotype
    from darts.bench import benchmark, score_column
    from darts.config import load_config
    from darts.data.planted import recovery, teacher_genotype
    from darts.plugins import load_genotype

    config = load_config(preset, {"search.selection": selection, "bench.seeds": seeds,
                                           "bench.orders": ["first"], "bench.random_genotypes": 2,
                                           "bench.transfer": TEACHER, "bench.baseline": None,
                                           "bench.strategies": [s for s in strategies if s != "darts"], **overrides})
    teacher = teacher_genotype(config.data.get("teacher"))
    register_genotype(TEACHER, teacher, plugin="benchmarks/planted.py")
    bench_dir = benchmark(config, out, None if quiet else Console(), quiet, name=f"planted-{selection}")
    rows = []
    results = json.loads((bench_dir / "results.json").read_text())["rows"]
    score = score_column(pd.DataFrame(results))
    for row in results:
        if row["kind"] not in ("searched", "random", "transfer"):
            continue
        train_dir = bench_dir / row["run"].split(", ")[-1]
        scores = recovery(teacher, load_genotype(train_dir / "genotype.json"))
        strategy = row["model"].rsplit(" ", 2)[0].replace("DARTS", "darts") if row["kind"] == "searched" else ""
        rows.append({"selection": selection, "strategy": strategy,
                     "model": {"searched": "searched", "random": "random genotype"}.get(row["kind"], "teacher's cell"),
                     "seed": row["seed"], "metric": score.removeprefix("mean "), "score": row[score], **scores})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| selection | strategy | genotype | runs | genes recovered | inputs | primitives | "
             f"test {rows[0]['metric']} |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["selection"], row.get("strategy", ""), row["model"]), []).append(row)
    for (selection, strategy, model), group in groups.items():
        def cell(key: str) -> str:
            values = [r[key] for r in group]
            return f"{np.mean(values):.3f} +- {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

        lines.append(f"| {selection} | {strategy} | {model} | {len(group)} | {cell('genes')} | {cell('inputs')} | "
                     f"{cell('primitives')} | {cell('score')} |")
    first = rows[0]
    lines.append(f"| | | expected at random | | {first['chance_genes']:.3f} | {first['chance_inputs']:.3f} | "
                 f"{first['chance_primitives']:.3f} | |")
    return "\n".join(lines)


def one_gene_changes(seeds: int, out: Path, quiet: bool, overrides: dict,
                     preset: str = "planted-quick") -> list[dict]:
    """The teacher's cell and every cell one gene away from it, each trained from scratch on the same data
    with the same seeds and budget as the benchmark's rows. A search can recover the teacher's cell only
    where it fits the teacher's data better than these do."""
    from darts.config import load_config
    from darts.data.planted import one_gene_changes as changes, teacher_genotype
    from darts.workflows import train

    base = load_config(preset, overrides)
    rows, first, teacher = [], base.seed, teacher_genotype(base.data.get("teacher"))
    for seed in range(seeds):
        config = load_config(preset, {**overrides, "seed": first + seed})
        for index, (name, genotype) in enumerate([("teacher's cell", teacher), *changes(teacher)]):
            run_dir = train(config, genotype, out / "one-gene-changes", quiet=True, run_name=f"cell{index}-seed{seed}")
            test = json.loads((run_dir / "results.json").read_text())["test"]
            metric = "accuracy" if "test_accuracy" in test else "R2"
            rows.append({"cell": name, "seed": config.seed, "metric": metric,
                         "score": test["test_accuracy" if metric == "accuracy" else "test_r2"]})
            if not quiet:
                print(f"seed {config.seed}: {name}: test {metric} {rows[-1]['score']:.4f}", flush=True)
    return rows


def changes_table(rows: list[dict]) -> str:
    """Each cell's mean test score and its difference from the teacher's cell, paired by seed."""
    teacher = {r["seed"]: r["score"] for r in rows if r["cell"] == "teacher's cell"}
    lines = [f"| cell | runs | test {rows[0]['metric']} | minus the teacher's cell |", "| --- | --- | --- | --- |"]
    cells: dict[str, list[dict]] = {}
    for row in rows:
        cells.setdefault(row["cell"], []).append(row)
    better = 0
    for name, group in cells.items():
        scores = [r["score"] for r in group]
        gap = np.mean([r["score"] - teacher[r["seed"]] for r in group])
        better += name != "teacher's cell" and gap < 0
        spread = f" +- {np.std(scores, ddof=1):.4f}" if len(scores) > 1 else ""
        shown = "" if name == "teacher's cell" else f"{gap:+.4f}"
        lines.append(f"| {name} | {len(group)} | {np.mean(scores):.4f}{spread} | {shown} |")
    lines.append(f"\nThe teacher's cell beats {better} of its {len(cells) - 1} one-gene changes on the mean.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--selection", default="alpha,perturbation",
                        help="comma-separated: alpha, perturbation; none: no search (with --changes)")
    parser.add_argument("--changes", action="store_true",
                        help="also train the teacher's cell and each cell one gene away from it: can the data single "
                             "out the teacher's cell at all?")
    parser.add_argument("--strategies", default="darts", help="comma-separated search strategies (darts plugins)")
    parser.add_argument("--preset", default="planted-quick", help="planted-quick (default) or planted-full")
    parser.add_argument("--out", default="runs/planted")
    parser.add_argument("--quiet", action="store_true")
    parser.epilog = "Configuration overrides of the preset follow, e.g. --search.epochs 20."
    args, rest = parser.parse_known_args(argv)
    from darts.config import parse_overrides

    overrides = parse_overrides(rest)
    selections = [s.strip() for s in args.selection.split(",") if s.strip()]
    if selections == ["none"] and args.changes:
        selections = []
    elif not selections or any(s not in ("alpha", "perturbation") for s in selections):
        print(f"error: --selection takes alpha and/or perturbation (or none with --changes), got "
              f"{args.selection!r}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    rows = [row for selection in selections
            for row in run(selection, args.seeds, out, args.quiet, overrides, strategies, args.preset)]
    texts = [table(rows)] if rows else []
    changes = one_gene_changes(args.seeds, out, args.quiet, overrides, args.preset) if args.changes else []
    if changes:
        texts.append(changes_table(changes))
    text = "\n\n".join(texts)
    (out / "planted.md").write_text(text + "\n", encoding="utf-8")
    (out / "planted.json").write_text(json.dumps({"genotypes": rows, "one_gene_changes": changes}, indent=2) + "\n",
                                      encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
