"""The planted architecture: how much of a known teacher cell does the search recover?

    OMP_NUM_THREADS=1 python benchmarks/planted.py --seeds 3 [--selection alpha,perturbation]
        [--strategies darts,fair-darts,...] [--out DIR] [overrides]

The ``planted`` task labels Gaussian sequences with a fixed random teacher network built from a known conv1d
genotype (``darts.data.planted``). For each selection rule (and each search strategy) this runs ``darts.benchmark.benchmark`` on the
``planted-quick`` preset (search, train the genotype from scratch; random genotypes of the same space
trained alike; the same seeds and data), then scores every genotype against the teacher's cell: the share of
the teacher's (primitive, input) genes found in the same node, of its inputs and of its primitives, beside
the expectation for a random genotype and the random genotypes' own scores. The teacher's own cell is trained
alike as a control (the bench's transferred row): recovery means something only where that cell fits the
teacher's data better than random cells do. Prints one table and writes it as ``planted.md`` and
``planted.json`` in the output folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


#: the teacher's genotype, registered in-process so that the benchmark trains it as its transferred row
TEACHER = "PLANTED_TEACHER"


def run(selection: str, seeds: int, out: Path, quiet: bool, overrides: dict,
        strategies: tuple[str, ...] = ()) -> list[dict]:
    """One benchmark of ``planted-quick`` with this selection: DARTS and each further strategy searched, random
    genotypes and the teacher's own cell trained alike; every genotype scored against the teacher's cell."""
    from rich.console import Console

    from darts import register_genotype
    from darts.benchmark import benchmark
    from darts.config import load_config
    from darts.data.planted import recovery, teacher_genotype
    from darts.genotype import load_genotype

    teacher = teacher_genotype()
    register_genotype(TEACHER, teacher, plugin="benchmarks/planted.py")
    config = load_config("planted-quick", {"search.selection": selection, "bench.seeds": seeds,
                                           "bench.orders": ["first"], "bench.random_genotypes": 2,
                                           "bench.transfer": TEACHER, "bench.baseline": None,
                                           "bench.strategies": [s for s in strategies if s != "darts"], **overrides})
    bench_dir = benchmark(config, out, None if quiet else Console(), quiet, name=f"planted-{selection}")
    rows = []
    for row in json.loads((bench_dir / "results.json").read_text())["rows"]:
        if row["kind"] not in ("searched", "random", "transfer"):
            continue
        train_dir = bench_dir / row["run"].split(", ")[-1]
        scores = recovery(teacher, load_genotype(train_dir / "genotype.json"))
        strategy = row["model"].rsplit(" ", 2)[0].replace("DARTS", "darts") if row["kind"] == "searched" else ""
        rows.append({"selection": selection, "strategy": strategy,
                     "model": {"searched": "searched", "random": "random genotype"}.get(row["kind"], "teacher's cell"),
                     "seed": row["seed"], "accuracy": row["mean accuracy"], **scores})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| selection | strategy | genotype | runs | genes recovered | inputs | primitives | test accuracy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["selection"], row.get("strategy", ""), row["model"]), []).append(row)
    for (selection, strategy, model), group in groups.items():
        def cell(key: str) -> str:
            values = [r[key] for r in group]
            return f"{np.mean(values):.3f} +- {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

        lines.append(f"| {selection} | {strategy} | {model} | {len(group)} | {cell('genes')} | {cell('inputs')} | "
                     f"{cell('primitives')} | {cell('accuracy')} |")
    first = rows[0]
    lines.append(f"| | | expected at random | | {first['chance_genes']:.3f} | {first['chance_inputs']:.3f} | "
                 f"{first['chance_primitives']:.3f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--selection", default="alpha,perturbation", help="comma-separated: alpha, perturbation")
    parser.add_argument("--strategies", default="darts", help="comma-separated search strategies (darts plugins)")
    parser.add_argument("--out", default="runs/planted")
    parser.add_argument("--quiet", action="store_true")
    parser.epilog = "Configuration overrides of planted-quick follow, e.g. --search.epochs 20."
    args, rest = parser.parse_known_args(argv)
    from darts.config import parse_overrides

    overrides = parse_overrides(rest)
    selections = [s.strip() for s in args.selection.split(",") if s.strip()]
    if not selections or any(s not in ("alpha", "perturbation") for s in selections):
        print(f"error: --selection takes alpha and/or perturbation, got {args.selection!r}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    rows = [row for selection in selections
            for row in run(selection, args.seeds, out, args.quiet, overrides, strategies)]
    text = table(rows)
    (out / "planted.md").write_text(text + "\n", encoding="utf-8")
    (out / "planted.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
