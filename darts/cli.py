"""The ``darts`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from darts.config import ConfigError, candle_overrides, load_config, parse_overrides, preset_names, schema_help
from darts.genotype import GenotypeError
from darts.plugins import load_genotype
from darts.plugins import get_registry
from darts.registry import RegistryError
from darts.runs import RunLog


def cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    registry = get_registry()
    rows = [{"family": family.name, "primitive": primitive.name, "aliases": list(primitive.aliases),
             "plugin": plugin.name, "distribution": plugin.distribution, "version": plugin.version,
             "description": primitive.description} for family, primitive, plugin in registry]
    strategies = [{"strategy": name, "aliases": registry.strategy_aliases(name), **_origin(registry.strategy_plugin(name)),
                   "description": registry.strategy_description(name)}
                  for name in registry.strategy_names]
    selectors = [{"selector": name, "aliases": [], **_origin(registry.selector_plugin(name)),
                  "description": registry.selector(name).description} for name in registry.selector_names]
    if args.json:
        console.print_json(json.dumps({"primitives": rows, "genotypes": registry.genotype_names,
                                       "strategies": strategies, "selectors": selectors}))
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
    _print_table(console, table)
    for kind, title, items in (("strategy", "strategies", strategies), ("selector", "selectors", selectors)):
        table = Table(title=f"darts search {title}")
        for column in (kind, "aliases", "plugin", "distribution", "version", "description"):
            table.add_column(column, no_wrap=column != "description")
        for item in items:
            table.add_row(item[kind], ", ".join(item["aliases"]), item["plugin"], item["distribution"],
                          item["version"], item["description"])
        _print_table(console, table)
    console.print(f"named genotypes: {', '.join(registry.genotype_names) or '(none)'}")
    return 0


def _origin(plugin) -> dict[str, str]:
    return {"plugin": plugin.name, "distribution": plugin.distribution, "version": plugin.version}


def _print_table(console: Console, table: Table) -> None:
    if console.is_terminal:
        console.print(table)
    elif not console.quiet:  # piped: as wide as the table needs, never truncated to 80 columns
        from rich.measure import Measurement

        wide = Console(width=10_000, file=console.file)
        Console(width=Measurement.get(wide, wide.options, table).maximum, file=console.file).print(table)


def cmd_genotype_show(args: argparse.Namespace, console: Console) -> int:
    source = Path(args.genotype)
    run_dir = source if source.is_dir() else None
    if run_dir is not None and not (run_dir / "genotype.json").exists():
        raise FileNotFoundError(f"{run_dir} has no genotype.json; give a search run directory, a genotype file or "
                                "a registered name")
    genotype = load_genotype(run_dir / "genotype.json" if run_dir else args.genotype)
    results = run_dir / "results.json" if run_dir else None
    verdict = json.loads(results.read_text()).get("verdict") if results and results.exists() else None
    if args.json:
        console.print_json(json.dumps({**genotype.to_dict(), **({"verdict": verdict} if verdict else {})}))
        return 0
    console.print(str(genotype), highlight=False)
    if verdict:
        from darts.diagnostics import Verdict

        console.print(str(Verdict.from_dict(verdict)), highlight=False)
    return 0


def cmd_genotype_plot(args: argparse.Namespace, console: Console) -> int:
    from darts.plots import plot_alpha_history, plot_genotype

    source = Path(args.genotype)
    run_dir = source if source.is_dir() else None
    genotype = load_genotype(run_dir / "genotype.json" if run_dir else args.genotype)
    out = Path(args.out) if args.out else (run_dir or (source.parent if source.exists() else Path(".")))
    stem = "genotype" if run_dir else (source.stem if source.exists() else args.genotype)
    alphas = run_dir / "alphas.jsonl" if run_dir else None
    targets = [out / f"{stem}.png", *([out / "alphas.png"] if alphas is not None and alphas.exists() else [])]
    for target in targets:
        if target.exists():
            raise FileExistsError(f"{target} exists; refusing to overwrite it (choose another folder with --out DIR, "
                                  "or move the file)")
    written = [plot_genotype(genotype, targets[0])]
    if len(targets) > 1:
        records = [json.loads(line) for line in alphas.read_text().splitlines() if line.strip()]
        written.append(plot_alpha_history(records, targets[1]))
    for path in written:
        console.print(f"wrote {path}")
    return 0


def _config(args: argparse.Namespace, console: Console | None = None):
    if args.config is None:
        raise ConfigError("give a CONFIG (a YAML file or a preset: " + ", ".join(preset_names()) + ")")
    overrides: dict = {}
    if getattr(args, "candle", None):
        overrides, ignored = candle_overrides(args.candle)
        if console is not None:
            console.print(f"CANDLE model file {args.candle}: " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
                          + "".join(f"\n  ignored {k}: {why}" for k, why in ignored.items()), highlight=False)
    return load_config(args.config, {**overrides, **parse_overrides(args.overrides)})


def _resume_guard(args: argparse.Namespace) -> None:
    if args.resume and (args.config or args.overrides):
        raise ConfigError("--resume continues a run with the configuration saved in it; give no CONFIG or overrides")


def cmd_search(args: argparse.Namespace, console: Console) -> int:
    from darts.workflows import search

    _resume_guard(args)
    run_dir = search(None if args.resume else _config(args, console), args.runs, args.resume, console, args.quiet)
    console.print(f"search finished: {run_dir}")
    return 0


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from darts.workflows import train

    _resume_guard(args)
    if not args.resume and not args.genotype:
        raise ConfigError("train needs --genotype FILE|NAME (a genotype.json, e.g. from a search, or DARTS_V2)")
    run_dir = train(None if args.resume else _config(args, console), args.genotype, args.runs, args.resume, console,
                    args.quiet, genotype_family=args.genotype_family)
    console.print(f"training finished: {run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace, console: Console) -> int:
    from darts.workflows import evaluate

    evaluate(args.run_dir, console, args.device)
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from darts.workflows import export

    done = export(args.run_dir, args.format, args.out)
    console.print(f"exported ({done.format}): {done.path}; largest difference from eager mode on {done.examples} "
                  f"test examples {done.max_difference:.2e}", highlight=False, soft_wrap=True)
    return 0


def cmd_summary(args: argparse.Namespace, console: Console) -> int:
    from darts.workflows import summary

    figures = summary(_config(args, console), args.genotype, args.genotype_family)
    if args.json:
        console.print_json(json.dumps(figures))
        return 0
    table = Table(title=f"{figures['network']} ({figures['family']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if key not in ("network", "family"):
            table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    console.print(f"parameters: {figures['parameters'] / 1e6:.2f}M (auxiliary heads excluded), multiply-adds: "
                  f"{figures['multiply_adds'] / 1e6:.1f}M per example of shape {figures['input_shape']}", highlight=False)
    return 0


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    from darts.bench import benchmark

    if args.resume:
        if args.config or args.full or args.candle or args.overrides:
            raise ConfigError("--resume continues a benchmark with the configuration saved in it; give no --config, "
                              "--full, --candle or overrides")
        bench_dir = benchmark(None, console=console, quiet=args.quiet, resume=args.resume)
        console.print(f"benchmark finished: {bench_dir} (results.csv, results.md)")
        return 0
    if args.config is None:
        args.config = f"{args.benchmark}-{'full' if args.full else 'quick'}"
    elif args.full:
        raise ConfigError("--full picks the full preset; give either --full or --config FILE, not both")
    bench_dir = benchmark(_config(args, console), args.runs, console, args.quiet, name=args.benchmark)
    console.print(f"benchmark finished: {bench_dir} (results.csv, results.md)")
    return 0


def cmd_quickstart(args: argparse.Namespace, console: Console) -> int:
    from darts.workflows import quickstart

    quickstart(args.runs, console, args.quiet, parse_overrides(args.overrides))
    return 0


CONFIG_EPILOG = ("CONFIG is a YAML file or a preset name. Presets: {presets}.\n\n"
                 "Every configuration key can be overridden on the command line after CONFIG, as --KEY VALUE or\n"
                 "--KEY=VALUE with dotted keys (values are read as YAML: 3, 0.5, null, [a, b]). Keys:\n  ")


def _add_config_arguments(parser: argparse.ArgumentParser, runs: bool = True) -> None:
    parser.add_argument("config", metavar="CONFIG", nargs="?", help="YAML config file or preset name")
    if runs:
        parser.add_argument("--runs", default="runs", help="folder that receives the new run directory "
                                                           "(default: runs)")
        parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint "
                                                            "(with its saved configuration)")
        parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines (for logs and "
                                                                 "CI); everything still goes to the run's log files")
    parser.add_argument("--candle", metavar="FILE", help="a CANDLE model file (e.g. p3b5_default_model.txt) whose "
                                                         "keys set the matching options; overrides still win")
    parser.epilog = CONFIG_EPILOG.format(presets=", ".join(preset_names())) + "\n  ".join(schema_help())


def _version() -> str:
    import platform

    import torch

    import darts

    return f"darts {darts.__version__} (torch {torch.__version__}, Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darts", description="Differentiable architecture search (DARTS).")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=description, allow_abbrev=False,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    search = command("search", "search an architecture (alphas and weights) and derive its genotype",
                     "Search the configured space on the task's training data: weights on one split, alphas on "
                     "the held-out rest. Writes a new run directory with the genotype, its history, the alpha "
                     "history, metrics, logs, a checkpoint after every epoch, the model and pictures.")
    _add_config_arguments(search)
    search.set_defaults(run=cmd_search)

    train = command("train", "train a genotype's network from scratch and test it",
                    "Train the discrete network of a genotype from scratch on the task's training data "
                    "(train.* settings), then evaluate it on the test split.")
    _add_config_arguments(train)
    train.add_argument("--genotype", metavar="FILE|NAME", help="genotype JSON file or registered name (required "
                                                               "unless --resume)")
    train.add_argument("--genotype-family", metavar="FAMILY", help="use the genotype's cells in another family "
                                                                   "with the same primitives (e.g. DARTS_V2 as conv1d)")
    train.set_defaults(run=cmd_train)

    evaluate = command("evaluate", "evaluate a finished run's model on the test split",
                       "Rebuild the model saved in a search or train run directory and report its test metrics "
                       "(also written to RUN_DIR/evaluation.json).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="directory of a finished search or train run")
    evaluate.add_argument("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps (default: the run's)")
    evaluate.set_defaults(run=cmd_evaluate)

    export = command("export", "write a trained network as TorchScript, ONNX or a torch.export program",
                     "Write the trained network of a finished train run (eval mode, weights from model.pt) as "
                     "TorchScript, ONNX or a torch.export program, load the file back and report its largest "
                     "difference from eager mode on test examples. Never overwrites a file.")
    export.add_argument("run_dir", metavar="RUN_DIR", help="directory of a finished train run")
    export.add_argument("--format", choices=["torchscript", "onnx", "exported-program"], default="torchscript",
                        help="torchscript (RUN_DIR/model.torchscript.pt, the default), onnx (model.onnx; needs the "
                             "extra [onnx]) or exported-program (model.pt2, torch.export.load)")
    export.add_argument("--out", metavar="FILE", help="the file to write (default: in RUN_DIR, named as above)")
    export.set_defaults(run=cmd_export)

    summary = command("summary", "parameters and multiply-adds of a network, without training",
                      "Build the search network of CONFIG, or with --genotype the discrete network (train.channels "
                      "and train.layers), and report its parameters (auxiliary heads excluded, as the DARTS paper "
                      "counts) and multiply-adds per example.")
    _add_config_arguments(summary, runs=False)
    summary.add_argument("--genotype", metavar="FILE|NAME", help="summarise this genotype's discrete network")
    summary.add_argument("--genotype-family", metavar="FAMILY", help="use the genotype's cells in another family "
                                                                     "with the same primitives")
    summary.add_argument("--json", action="store_true", help="print machine-readable JSON")
    summary.set_defaults(run=cmd_summary)

    plugins = command("plugins", "list every family, its primitives, the search strategies and selectors, and the plugin each came from",
                      "List every family, its primitives and the plugin (distribution and version) each came "
                      "from, and the named genotypes.")
    plugins.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    plugins.add_argument("--long", action="store_true", help="add each primitive's description to the table")
    plugins.set_defaults(run=cmd_plugins)

    genotype = command("genotype", "inspect and draw genotypes", "Inspect and draw genotypes.")
    genotype_commands = genotype.add_subparsers(dest="genotype_command", required=True, metavar="ACTION")
    show = genotype_commands.add_parser("show", help="print a genotype file or a named genotype readably",
                                        description="Validate and print a genotype JSON file, a named genotype "
                                                    "(e.g. DARTS_V2, DARTS_RNN_V2), or a search run's genotype "
                                                    "with the search's verdict.")
    show.add_argument("genotype", metavar="FILE|NAME|RUN_DIR", help="a genotype JSON file, a registered name or a "
                                                                    "search run directory")
    show.add_argument("--json", action="store_true", help="print the validated genotype as JSON")
    show.set_defaults(run=cmd_genotype_show)
    plot = genotype_commands.add_parser("plot", help="draw a genotype's cells (and a search's alpha history)",
                                        description="Draw the cells of a genotype as a PNG. Given a search run "
                                                    "directory, also draw the evolution of alpha over the epochs.")
    plot.add_argument("genotype", metavar="FILE|NAME|RUN_DIR", help="genotype file, registered name or run directory")
    plot.add_argument("--out", metavar="DIR", help="folder for the PNG files (default: next to the file, the run "
                                                   "directory, or the current folder for a name)")
    plot.set_defaults(run=cmd_genotype_plot)

    bench = command("bench", "benchmark searched architectures against random ones and a baseline",
                    "Search with first- and second-order DARTS, train each genotype from scratch, train a random "
                    "genotype of the same space and a hand-designed baseline with the same budget, test them all, "
                    "and print one table (also results.csv and results.md in a new run directory).")
    bench.add_argument("benchmark", choices=["p3b5"], metavar="BENCHMARK", help="which benchmark: p3b5 (CANDLE Pilot 3 Benchmark 5: "
                                                           "clinical-report token sequences, four tasks)")
    mode = bench.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the default: generated data, minutes on a CPU")
    mode.add_argument("--full", action="store_true", help="CANDLE's P3B5 hyperparameters on your P3B3 files "
                                                          "(set --data.path)")
    bench.add_argument("--config", metavar="CONFIG", help="a YAML file or preset instead of the quick/full preset")
    bench.add_argument("--runs", default="runs", help="folder that receives the benchmark's directory (default: runs)")
    bench.add_argument("--resume", metavar="DIR", help="continue the killed benchmark in DIR: finished sub-runs are "
                                                       "reused, the interrupted one resumes (saved configuration)")
    bench.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    bench.add_argument("--candle", metavar="FILE", help="a CANDLE model file (p3b5_default_model.txt) whose keys "
                                                        "set the matching options; overrides still win")
    bench.epilog = "Configuration overrides as in 'darts search --help', e.g. --search.epochs 2 --data.path DIR."
    bench.set_defaults(run=cmd_bench)

    quick = command("quickstart", "search and train on generated data in one to two minutes (motifs-quick)",
                    "Search a conv1d cell on generated motif sequences with the motifs-quick preset, then train "
                    "the derived genotype from scratch and test it against the majority class. Writes two new "
                    "run directories (search-..., train-...) under --runs.")
    quick.add_argument("--runs", default="runs", help="folder that receives the run directories (default: runs)")
    quick.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    quick.epilog = "Overrides of the motifs-quick preset as in 'darts search --help', e.g. --search.epochs 2."
    quick.set_defaults(run=cmd_quickstart)
    return parser


OVERRIDABLE = ("search", "train", "summary", "quickstart", "bench")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # bare `darts`: what it can do
        parser.print_help()
        return 0
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args, extra = parser.parse_known_args([a for a in argv if a != "--debug"])
    args.debug = debug
    if extra and args.command not in OVERRIDABLE:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    from darts import distributed
    from darts.allocator import keep_freed_memory_unless_disabled

    warnings.formatwarning = _one_line_warning
    keep_freed_memory_unless_disabled()  # no page faults for the memory each pass frees (glibc)
    distributed.init_from_environment()  # under torchrun: join the process group; only rank 0 prints
    console = Console(quiet=not distributed.is_main())
    RunLog.current = None
    try:
        return args.run(args, console)
    except KeyboardInterrupt:
        Console(stderr=True).print("[red]interrupted[/red]", highlight=False)
        return 130
    except Exception as error:  # noqa: BLE001 - the one error boundary: every failure ends as one line
        if args.debug:
            raise
        status, message = classify_error(error)
        _record_error(error, status, message)
        Console(stderr=True).print(message, markup=False, highlight=False, soft_wrap=True)
        return status


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def classify_error(error: BaseException) -> tuple[int, str]:
    """The exit status (2: bad input, 1: the run stopped) and the one-line message of a failure."""
    from darts.workflows import RunError

    def first_line(value: object) -> str:
        lines = str(value).strip().splitlines()
        return lines[0][:500] if lines else ""

    if isinstance(error, RunError):
        return 1, f"run stopped: {error}"
    if isinstance(error, RecursionError):
        return 2, "error: an input is nested too deeply to read (a JSON or YAML file of nested lists or mappings?)"
    if isinstance(error, (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                          NotADirectoryError)):
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        reason = error.strerror if getattr(error, "filename", None) and error.strerror else first_line(error)
        return 2, f"error: {where}{reason}"
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return 1, (f"run stopped: cannot write or read{where}: {error.strerror or first_line(error)} (free space "
                   "or raise the limit, then --resume the run)")
    if isinstance(error, (ConfigError, RegistryError, GenotypeError, ValueError)):
        return 2, f"error: {error}"  # darts' own messages: whole (a configuration error lists every key)
    image_error = _pil_error(error)
    if image_error is not None:
        return 2, f"error: an image could not be read: {image_error}"
    return 1, (f"run stopped by an unexpected {type(error).__name__}: {first_line(error)} (run again with --debug "
               "for the traceback, and please report it)")


def _pil_error(error: BaseException) -> str | None:
    module = type(error).__module__ or ""
    return f"{type(error).__name__}: {error}" if module.startswith("PIL") else None


def _record_error(error: BaseException, status: int, message: str) -> None:
    """An ``error`` event in the current run's events.jsonl, if a run had started (and its folder can be written)."""
    from darts.workflows import RunError

    log = RunLog.current
    if log is None or isinstance(error, RunError):  # a stopped run recorded its error itself
        return
    try:
        log.event("error", echo=False, status=status, type=type(error).__name__, message=message)
    except OSError:
        pass

if __name__ == "__main__":
    sys.exit(main())
