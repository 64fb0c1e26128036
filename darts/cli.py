"""The ``darts`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Sequence

from rich.console import Console
from rich.table import Table

from darts.genotype import GenotypeError, load_genotype
from darts.plugins import get_registry
from darts.registry import RegistryError


def cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    registry = get_registry()
    rows = [{"family": family.name, "primitive": primitive.name, "aliases": list(primitive.aliases),
             "plugin": plugin.name, "distribution": plugin.distribution, "version": plugin.version,
             "description": primitive.description} for family, primitive, plugin in registry]
    if args.json:
        console.print_json(json.dumps({"primitives": rows, "genotypes": registry.genotype_names}))
        return 0
    table = Table(title="darts families and primitives")
    columns = ["family", "primitive", "aliases", "plugin", "distribution", "version"]
    columns += ["description"] if args.long else []
    for column in columns:
        table.add_column(column, no_wrap=column != "description")
    previous = None
    for row in rows:
        family = row["family"] if row["family"] != previous else ""
        previous = row["family"]
        cells = [family, row["primitive"], ", ".join(row["aliases"]), row["plugin"], row["distribution"],
                 row["version"]]
        table.add_row(*cells, *([row["description"]] if args.long else []))
    console.print(table)
    console.print(f"named genotypes: {', '.join(registry.genotype_names) or '(none)'}")
    return 0


def cmd_genotype_show(args: argparse.Namespace, console: Console) -> int:
    genotype = load_genotype(args.genotype)
    if args.json:
        console.print_json(json.dumps(genotype.to_dict()))
    else:
        console.print(str(genotype), highlight=False)
    return 0


def cmd_quickstart(args: argparse.Namespace, console: Console) -> int:
    from darts.quickstart import QuickstartConfig, run_quickstart

    options = {f.name: getattr(args, f.name) for f in fields(QuickstartConfig)}
    run_quickstart(QuickstartConfig(**options), args.runs, console)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darts", description="Differentiable architecture search (DARTS).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugins = commands.add_parser("plugins", help="list every family, its primitives and the plugin each came from",
                                  description="List every family, its primitives and the plugin (distribution "
                                              "and version) each came from, and the named genotypes.")
    plugins.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    plugins.add_argument("--long", action="store_true", help="add each primitive's description to the table")
    plugins.set_defaults(run=cmd_plugins)

    genotype = commands.add_parser("genotype", help="inspect genotypes", description="Inspect genotypes.")
    genotype_commands = genotype.add_subparsers(dest="genotype_command", required=True, metavar="ACTION")
    show = genotype_commands.add_parser("show", help="print a genotype file or a named genotype readably",
                                        description="Validate and print a genotype JSON file or a named genotype "
                                                    "(e.g. DARTS_V2, DARTS_RNN_V2).")
    show.add_argument("genotype", metavar="FILE|NAME", help="a genotype JSON file or a registered name")
    show.add_argument("--json", action="store_true", help="print the validated genotype as JSON")
    show.set_defaults(run=cmd_genotype_show)

    from darts.quickstart import QuickstartConfig

    quick = commands.add_parser("quickstart", help="a short search on generated data (about a minute)",
                                description="Search a conv1d cell on generated motif sequences, derive the "
                                            "genotype, train it from scratch and test it; writes a new run "
                                            "directory under --runs.")
    quick.add_argument("--runs", default="runs", help="folder that receives the new run directory (default: runs)")
    defaults = QuickstartConfig()
    helps = {"epochs": "search epochs", "train_epochs": "epochs to train the derived network",
             "order": "architecture gradient: first, second (finite difference) or exact",
             "samples": "training sequences (half for weights, half for alphas)", "test_samples": "test sequences",
             "length": "sequence length", "channels": "initial channels C", "layers": "cells",
             "nodes": "intermediate nodes per cell", "batch_size": "batch size", "seed": "random seed"}
    for f in fields(QuickstartConfig):
        option = "--" + f.name.replace("_", "-")
        kind = type(getattr(defaults, f.name))
        extra = {"choices": ["first", "second", "exact"]} if f.name == "order" else {}
        quick.add_argument(option, dest=f.name, type=kind, default=getattr(defaults, f.name),
                           help=f"{helps[f.name]} (default: {getattr(defaults, f.name)})", **extra)
    quick.set_defaults(run=cmd_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        return args.run(args, console)
    except (RegistryError, GenotypeError, FileExistsError, ValueError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
