"""The runs behind the CLI: search, train, evaluate and summary, each from a checked configuration.

A search or training run owns a new directory (or resumes its own with ``resume=``) holding:
``run.json`` (what ran), ``config.yaml`` (resolved), ``log.txt`` and ``events.jsonl``, ``metrics.csv``,
``checkpoint.pt`` (atomic, after every epoch), ``model.pt``, ``results.json``, ``genotype.json`` and
PNG pictures; a search adds ``genotypes.jsonl``, ``alphas.jsonl`` and ``genotype_best.json``.
"""

from __future__ import annotations

import io
import json
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from rich.console import Console
from rich.table import Table

import darts
from darts import distributed
from darts.architecture import Architecture
from darts.config import RunConfig, load_config
from darts.data import DataWarning
from darts.device import FP32, Precision
from darts.device import resolve as resolve_device
from darts.genotype import Genotype
from darts.plugins import load_genotype
from darts.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from darts.plugins import get_registry
from darts.assemble import (build_baseline, build_network, build_search_network, build_trained_network,
                          count_parameters, multiply_adds)
from darts.runs import RunLog, lock_run_dir, new_run_dir, unlock_run_dir
from darts.tasks import TaskData, get_task
from darts.untrusted import load_torch
from darts.training.callbacks import (Checkpoint, EarlyStopping, GenotypeTracker, GradientClipping, LRSchedule,
                                      MetricsLogger, ProgressBar, SearchDiagnostics, StrategySchedule,
                                      TerminateOnNonFinite, load_checkpoint, make_optimizer,
                                      make_scheduler)
from darts.resource import ResourcePenalty, cost_model
from darts.search_plan import plan_search
from darts.strategy import SelectionContext
from darts.training.tensorboard import TensorBoardLogger
from darts.training.trainer import Callback, NonFiniteLossError, Trainer

if TYPE_CHECKING:
    from darts.export import Exported


class RunError(RuntimeError):
    """A run that stopped: a non-finite loss."""


class RunDirectoryError(ValueError):
    """A folder that is not the run directory a command needs (not a run, another kind, finished already)."""


@dataclass
class RunContext:
    """What every run starts from: its configuration and data, then its directory and log.

    A new run's directory is created by :meth:`open`, once the network is built, so that a configuration
    that fails there leaves no empty run behind.
    """

    command: str
    config: RunConfig
    data: TaskData
    console: Console | None
    quiet: bool
    run_dir: Path | None = None
    log: RunLog | None = None
    runs: Path | None = None
    extra: dict[str, Any] | None = None
    #: the new run folder's exact name under ``runs`` (a benchmark's sub-runs); None: COMMAND-TASK-TIME
    run_name: str | None = None
    #: DataWarnings from loading the data, recorded as warning events once the run's log exists
    data_warnings: list[str] = field(default_factory=list)
    #: where the run computes (``config.device`` resolved) and in what precision
    device: torch.device = torch.device("cpu")
    precision: Precision = FP32
    #: what ``_start``'s ``prepare`` resolved before the data (a search's :class:`~darts.search_plan.SearchPlan`)
    plan: Any = None

    def placed(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` (weights and alphas) moved to the run's device."""
        return model.to(self.device)

    @property
    def resumed(self) -> bool:
        """Whether this run continues an existing run folder (``--resume``) rather than making a new one."""
        return self.runs is None

    def open(self) -> None:
        """Make (or lock, on resume) the run folder, write what the run starts from, and open its log."""
        if self.run_dir is None:
            self.run_dir = (new_run_dir(self.runs, self.run_name, exact=True) if self.run_name
                            else new_run_dir(self.runs, f"{self.command}-{self.config.task}"))
        if distributed.is_main():
            lock_run_dir(self.run_dir)  # a second --resume of this run is refused while this one works
        if self.runs is not None and distributed.is_main():  # a new run: rank 0 writes what it starts from
            atomic_write_text(self.run_dir / "config.yaml", self.config.to_yaml())
            atomic_write_json(self.run_dir / "run.json", {
                "command": self.command, "darts": darts.__version__, "torch": torch.__version__,
                "python": platform.python_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                **(self.extra or {})})
            for name, content in self.data.artifacts.items():  # e.g. the vocabulary and the label mapping
                atomic_write_json(self.run_dir / name, content)
        self.log = RunLog(self.run_dir, self.console, self.quiet)
        for message in self.data_warnings:
            self.log.event("warning", f"warning: {message}")


def load_data(config: RunConfig) -> TaskData:
    """The configuration's task's data: its ``data.*`` options checked by the task, drawn with ``config.seed``."""
    task = get_task(config.task)
    return task.load(task.Options(**config.data), config.seed)


def describe_data(config: RunConfig) -> TaskData:
    """The task's inputs and targets, from its files or, where it can, from its options alone."""
    task = get_task(config.task)
    return task.spec(task.Options(**config.data), config.seed)


def _start(command: str, config: RunConfig | None, runs: str | Path, resume: str | Path | None,
           console: Console | None, quiet: bool, extra: dict[str, Any] | None = None,
           run_name: str | None = None, prepare: Callable[[RunConfig], Any] | None = None) -> RunContext:
    """The run's configuration (a resumed run's own), device and data; ``prepare(config)`` runs before the data
    is loaded (a search resolves its strategy there) and its result is ``context.plan``."""
    distributed.init_from_environment()  # a script under torchrun: one run over its processes, not N runs
    if resume is not None:
        run_dir = Path(resume)
        info_path = run_dir / "run.json"
        if not info_path.exists():
            if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".lock", "config.yaml"}:
                raise RunDirectoryError(f"{run_dir} was made by a run killed before it began (no run.json): nothing "
                                        "to resume; start a new run (and delete this folder)")
            raise RunDirectoryError(f"{run_dir} is not a run directory (no run.json); resume takes the folder a run created")
        info = json.loads(info_path.read_text())
        if info["command"] != command:
            raise RunDirectoryError(f"{run_dir} is a {info['command']} run; resume it with 'darts {info['command']} --resume'")
        if (run_dir / "results.json").exists():
            raise RunDirectoryError(f"{run_dir} finished already (results.json exists); start a new run instead")
        config = load_config(run_dir / "config.yaml")
    elif config is None:
        raise ValueError("a new run needs a configuration")
    device = resolve_device(config.device)  # before the data: a missing GPU fails at once
    plan = prepare(config) if prepare is not None else None
    torch.manual_seed(config.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = load_data(config)
    context = RunContext(command, config, data, console, quiet, extra=extra, run_name=run_name, device=device,
                         precision=Precision(config.precision, device), plan=plan)
    for warning in caught:
        if issubclass(warning.category, DataWarning):
            context.data_warnings.append(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if resume is not None:
        context.run_dir = Path(resume)
        context.open()
    else:
        context.runs = Path(runs)
    return context


def _common_callbacks(context: RunContext, loop, optimizer, console: Console | None, description: str,
                      architecture: Architecture | None = None, genotype: Genotype | None = None) -> list[Callback]:
    callbacks: list[Callback] = [
        TerminateOnNonFinite(loop.loss_limit),
        LRSchedule(make_scheduler(optimizer, loop.schedule, loop.epochs, loop.lr_min, loop.lr_gamma)),
        MetricsLogger(context.run_dir, context.log),
        Checkpoint(context.run_dir, context.log),
    ]
    if context.config.log.tensorboard:
        callbacks.append(TensorBoardLogger(context.run_dir, architecture, genotype))
    if loop.grad_clip is not None:
        callbacks.append(GradientClipping(loop.grad_clip))
    if loop.patience:
        callbacks.append(EarlyStopping(loop.patience, context.log))
    if console is not None and not context.log.quiet:
        callbacks.append(ProgressBar(console, description))
    return callbacks


def _fit(context: RunContext, trainer: Trainer) -> None:
    if context.resumed:
        checkpoint = context.run_dir / "checkpoint.pt"
        if checkpoint.exists():
            trainer.load_state_dict(load_checkpoint(context.run_dir))
            context.log.event("resume", f"resumed {context.run_dir} after epoch {trainer.epoch}", epoch=trainer.epoch)
        else:
            context.log.event("resume", f"no checkpoint in {context.run_dir}: starting again from epoch 1", epoch=0)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        where = f"after epoch {trainer.epoch}" if trainer.epoch else "before the first checkpoint"
        context.log.event("interrupted", f"interrupted during epoch {trainer.epoch + 1}; resume {where} with "
                          f"'darts {context.command} --resume {context.run_dir}'", epoch=trainer.epoch)
        raise
    except NonFiniteLossError as error:
        kept = f"the last good checkpoint (epoch {trainer.epoch}) stays in {context.run_dir}" if trainer.epoch \
            else "no epoch finished, so there is no checkpoint"
        context.log.event("error", f"stopped: {error}; {kept}", error=str(error))
        raise RunError(f"{error}; {kept}") from error


def _save_model(context: RunContext, model: torch.nn.Module) -> None:
    if not distributed.is_main():
        return
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(context.run_dir / "model.pt", buffer.getvalue())


# --- search ------------------------------------------------------------------------------------------------
def search(config: RunConfig | None = None, runs: str | Path = "runs", resume: str | Path | None = None,
           console: Console | None = None, quiet: bool = False, callbacks: Sequence[Callback] = (),
           run_name: str | None = None) -> Path:
    """Search the configured space on the task's training data (weights on one split, alphas on the other).

    ``callbacks`` are added to the built-in ones (their state is checkpointed too); ``run_name`` names the new
    run folder under ``runs`` exactly."""
    context = _start("search", config, runs, resume, console, quiet, run_name=run_name, prepare=plan_search)
    config, data, s, plan = context.config, context.data, context.config.search, context.plan
    recipe = data.recipe()  # how this kind of data is searched
    recipe.check_search(s, plan.selector)
    network = context.placed(build_search_network(config.model, data, plan.network_options))
    network.set_strategy(plan.strategy)
    if s.resource is not None:
        r = s.resource
        example = data.example_input(1)
        costs = cost_model(network, example.to(context.device), r.measure,
                           lambda genotype: _measure(build_network(genotype, config.model, data), example, r.measure))
        network.resource = ResourcePenalty(costs, r.target, r.weight)
    optimizer = make_optimizer(network.parameters(), s)
    architecture = Architecture(network, optimizer, recipe.loss(config), s.order, lr=s.arch_lr, betas=s.arch_betas,
                                weight_decay=s.arch_weight_decay, radius=s.radius, grad_clip=s.grad_clip,
                                difference=s.difference, reuse_gradient=s.reuse_gradient, precision=context.precision)
    context.open()
    tracker = GenotypeTracker(context.run_dir)
    diagnostics = SearchDiagnostics(network, context.log)
    common = [tracker, diagnostics, StrategySchedule(plan.strategy), *_common_callbacks(context, s, optimizer, console, "search", architecture), *callbacks]
    trainer, sizes, held_out = recipe.search_trainer(context, network, optimizer, architecture, common)
    if not context.resumed:
        weights = sum(p.numel() for p in network.parameters())
        context.log.event("start", f"search {config.task} with {config.model.family} ({s.order} order, "
                          f"{plan.describe()}): {weights:,} weights, {sizes} -> {context.run_dir}", weights=weights,
                          run_dir=str(context.run_dir), strategy=plan.strategy.name)
        recipe.check_budget(context, trainer)
    _fit(context, trainer)

    chosen = plan.selector.select(SelectionContext(network, trainer, held_out, s, config.seed, context.log,
                                                   context.run_dir, tracker.best))
    judged = diagnostics.verdict(s, None if plan.selector.name == "alpha" else chosen)
    resource = _resource_report(network, chosen, config, data) if s.resource is not None else None
    _save_model(context, network)
    if distributed.is_main():
        chosen.save(context.run_dir / "genotype.json", overwrite=True)
        if config.log.plots:
            _plot_search(context.run_dir, chosen, tracker.alphas, trainer.history, diagnostics.records)
    last = trainer.history[-1]
    results = {"command": "search", "task": config.task, "family": config.model.family, "epochs": trainer.epoch,
               "monitor": trainer.monitor, "best": trainer.best, "final": last,
               "genotype": s.genotype, "parameters": count_parameters(network)["model"],
               "strategy": plan.strategy.name, "strategy_options": plan.strategy.options.model_dump(),
               "selection": plan.selector.name, **({"resource": resource} if resource else {}),
               "seconds": round(sum(row["seconds"] for row in trainer.history), 2),
               "verdict": judged.to_dict(),
               "diagnostics": [{k: v for k, v in r.items() if k != "genotype"} for r in diagnostics.records]}
    if distributed.is_main():
        atomic_write_json(context.run_dir / "results.json", results)
    context.log.event("verdict" if judged.decisive else "warning", str(judged), verdict=judged.to_dict())
    if resource:
        context.log.event("resource", f"{resource['measure']}: the derived network has {resource['genotype']:,.0f} "
                          f"(expected under the final weights {resource['expected']:,.0f}; target "
                          f"{resource['target']:,.0f})", **resource)
    context.log.event("finish", f"genotype ({s.genotype}):\n{chosen}", results=results)
    unlock_run_dir(context.run_dir)
    context.log.close()
    distributed.barrier()  # every rank returns once the run's files are written
    return context.run_dir


def _resource_report(network, genotype: Genotype, config: RunConfig, data: TaskData) -> dict[str, Any]:
    """The resource target against the final expected cost and the derived genotype's network, measured."""
    r = config.search.resource
    with torch.no_grad():
        weights = {name: network.strategy.mixing_weights(network.alphas[name], "derive")
                   for name in network.searched_alphas()}
        expected = float(network.resource.model.expected(weights))
    measured = _measure(build_network(genotype, config.model, data), data.example_input(1), r.measure)
    return {"measure": r.measure, "target": r.target, "weight": r.weight, "expected": round(expected, 1),
            "genotype": measured}


def _measure(network: torch.nn.Module, example: torch.Tensor, measure: str) -> float:
    """A network's parameters (auxiliary heads apart) or multiply-adds of one example."""
    return count_parameters(network)["model"] if measure == "parameters" else multiply_adds(network, example)


def _plot_search(run_dir: Path, genotype: Genotype, alphas: list[dict], history: list[dict],
                 diagnostics: list[dict]) -> None:
    from darts.plots import plot_alpha_history, plot_diagnostics, plot_genotype, plot_metrics

    plot_genotype(genotype, run_dir / "genotype.png")
    plot_alpha_history(alphas, run_dir / "alphas.png")
    plot_metrics(history, run_dir / "metrics.png")
    plot_diagnostics(diagnostics, run_dir / "diagnostics.png")


# --- train -------------------------------------------------------------------------------------------------
def train(config: RunConfig | None = None, genotype: str | Path | Genotype | None = None, runs: str | Path = "runs",
          resume: str | Path | None = None, console: Console | None = None, quiet: bool = False,
          callbacks: Sequence[Callback] = (), genotype_family: str | None = None, run_name: str | None = None) -> Path:
    """Train the discrete network of ``genotype`` from scratch on the training data, then test it.

    ``genotype_family`` re-targets the genotype to another family with the same primitive names (for
    example DARTS_V2, a conv2d genotype, on 1D inputs with ``conv1d``)."""
    if resume is None:
        if genotype is None:
            raise ValueError("train needs a genotype (a file or a registered name such as DARTS_V2)")
        genotype = _load_genotype(genotype, genotype_family)
    source = genotype if isinstance(genotype, (str, Path)) else None
    context = _start("train", config, runs, resume, console, quiet,
                     {"network": "genotype", "genotype_source": str(source or "genotype")}, run_name)
    if resume is not None:
        genotype = load_genotype(context.run_dir / "genotype.json")
    model = context.placed(build_trained_network(genotype, context.config, context.data))
    context.open()
    if resume is None and distributed.is_main():
        genotype.save(context.run_dir / "genotype.json", overwrite=True)
    distributed.barrier()
    return _train_model(context, model, f"{genotype.family} genotype", callbacks, genotype)


def train_baseline(config: RunConfig | None = None, name: str = "textcnn", runs: str | Path = "runs",
                   resume: str | Path | None = None, console: Console | None = None, quiet: bool = False,
                   callbacks: Sequence[Callback] = (), run_name: str | None = None) -> Path:
    """Train a hand-designed baseline network (see :data:`darts.assemble.BASELINES`) like a genotype's."""
    context = _start("train", config, runs, resume, console, quiet, {"network": name}, run_name)
    if resume is not None:
        name = json.loads((context.run_dir / "run.json").read_text())["network"]
    model = context.placed(build_baseline(name, context.config, context.data))
    context.open()
    return _train_model(context, model, f"{name} baseline", callbacks)


def _train_model(context: RunContext, model: torch.nn.Module, what: str, callbacks: Sequence[Callback],
                 genotype: Genotype | None = None) -> Path:
    """Train ``model`` with the train.* settings on the training split, then test it; write the results."""
    config, data, t = context.config, context.data, context.config.train
    optimizer = make_optimizer(model.parameters(), t)
    common = _common_callbacks(context, t, optimizer, context.console, "train", genotype=genotype)
    recipe = data.recipe()  # how this kind of data is trained and tested
    trainer, train_size = recipe.train_trainer(context, model, optimizer, common, callbacks)
    parameters = count_parameters(model)
    if not context.resumed:
        context.log.event("start", f"train {what} on {config.task}: {parameters['model']:,} parameters, "
                          f"{train_size} -> {context.run_dir}", parameters=parameters, run_dir=str(context.run_dir))
    _fit(context, trainer)

    _save_model(context, model)
    test = recipe.test(trainer, config)
    results = {"command": "train", "task": config.task, "network": what, "epochs": trainer.epoch,
               "parameters": parameters, "test": test, "monitor": trainer.monitor, "best": trainer.best,
               "final": trainer.history[-1], "baseline": recipe.baseline(),
               "seconds": round(sum(row["seconds"] for row in trainer.history), 2)}
    if distributed.is_main():
        from darts.plots import plot_genotype, plot_metrics

        if genotype is not None and config.log.plots:
            plot_genotype(genotype, context.run_dir / "genotype.png")
        if config.log.plots:
            plot_metrics(trainer.history, context.run_dir / "metrics.png")
        atomic_write_json(context.run_dir / "results.json", results)  # last: a run with results is complete
    context.log.event("finish", results=results)
    context.log.event("result", f"test: {headline(test, results['baseline'], data)}")
    unlock_run_dir(context.run_dir)
    context.log.close()
    distributed.barrier()
    return context.run_dir


def _load_genotype(source: str | Path | Genotype, family: str | None) -> Genotype:
    genotype = load_genotype(source)
    return genotype if family is None else load_genotype(genotype.with_family(family))


def headline(test: dict[str, float], baseline: dict[str, float], data: TaskData) -> str:
    """One line of a run's test figures: those over all targets (the means of a multi-task run), and the
    majority class's accuracy beside them."""
    targets = data.recipe().target_names()
    shown = {k.removeprefix("test_"): v for k, v in test.items()
             if not any(k.startswith(f"test_{name}_") for name in targets)}
    def name(key: str) -> str:
        return key.replace("_f1", "-F1").replace("_", " ")

    line = ", ".join(f"{name(k)} {v:.4f}" for k, v in shown.items())
    majority = [v for k, v in baseline.items() if k.startswith("majority")]
    if majority:
        line += f"; majority class {sum(majority) / len(majority):.4f}" + (" (mean over targets)" if targets else "")
    elif baseline:
        line += "; " + ", ".join(f"{name(k)} {v:.4f}" for k, v in baseline.items())
    return line


def results_table(title: str, metrics: dict[str, float], baseline: dict[str, float] | None = None) -> Table:
    """A two-column rich table of a run's final metrics, with the baseline's after them."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in {**metrics, **(baseline or {})}.items():
        table.add_row(key, f"{value:.4f}")
    return table


# --- evaluate ----------------------------------------------------------------------------------------------
def _finished_run(run_dir: Path, command: str) -> tuple[dict, RunConfig, TaskData, torch.nn.Module]:
    """(run.json, configuration, data, model with its saved weights, on the CPU) of a finished run."""
    for name in ("run.json", "config.yaml", "model.pt"):
        if not (run_dir / name).exists():
            raise RunDirectoryError(f"{run_dir} has no {name}; {command} takes the directory of a finished "
                                    + ("train run" if command == "export" else "search or train run"))
    info = json.loads((run_dir / "run.json").read_text())
    config = load_config(run_dir / "config.yaml")
    torch.manual_seed(config.seed)
    data = load_data(config)
    if info["command"] == "train" and info.get("network", "genotype") != "genotype":
        model = build_baseline(info["network"], config, data)
    elif info["command"] == "train":
        model = build_trained_network(run_dir / "genotype.json", config, data)
    else:
        model = build_search_network(config.model, data)
    model.load_state_dict(load_torch(run_dir / "model.pt", "model"))
    return info, config, data, model


def evaluate(run_dir: str | Path, console: Console | None = None, device: str | None = None) -> dict[str, float]:
    """Rebuild a finished run's model from its directory and measure it on the test split, on ``device`` (by
    default the run's own, e.g. ``cpu`` for a GPU run's files on a laptop)."""
    run_dir = Path(run_dir)
    info, config, data, model = _finished_run(run_dir, "evaluate")
    if info["command"] == "train":
        batch_size, statistics = config.train.batch_size, "running"
    else:
        batch_size, statistics = config.search.batch_size, "batch"
    device = resolve_device(device or config.device)
    model.to(device)
    precision = Precision(config.precision, device)
    recipe = data.recipe()
    metrics, baseline = recipe.evaluate(model, config, batch_size, statistics, precision), recipe.baseline()
    atomic_write_json(run_dir / "evaluation.json", {"test": metrics, "baseline": baseline})
    if console is not None:
        console.print(results_table(f"{info['command']} run {run_dir.name}: test split", metrics, baseline))
    return metrics


# --- export ------------------------------------------------------------------------------------------------
def export(run_dir: str | Path, format: str = "torchscript", out: str | Path | None = None,
           examples: int = 8) -> "Exported":
    """Write the trained network of a finished ``darts train`` run as TorchScript, ONNX or an exported program
    (see :mod:`darts.export`), checked against eager mode on ``examples`` test examples."""
    from darts.export import FORMATS, export_network

    run_dir = Path(run_dir)
    if format not in FORMATS:
        raise ValueError(f"export format {format!r} is not one of {', '.join(FORMATS)}")
    info, config, data, model = _finished_run(run_dir, "export")
    if info["command"] != "train":
        raise RunDirectoryError(f"{run_dir} is a {info['command']} run; export takes a train run (a search's "
                                "supernet is not the network to deploy: train its genotype first, darts train ... "
                                f"--genotype {run_dir / 'genotype.json'})")
    data.recipe().check_export()
    if not (results := run_dir / "results.json").exists():
        raise RunDirectoryError(f"{run_dir} has not finished (no {results.name}); resume it first")
    take = min(examples, len(data.test))
    check = torch.stack([data.test[i][0] for i in range(take)])
    example = data.example_input(2)
    names = [target.name for target in data.targets] if data.multi_task else ["output"]
    path = Path(out) if out is not None else run_dir / f"model{FORMATS[format]}"
    return export_network(model, example, check, format, path, names)


# --- summary -----------------------------------------------------------------------------------------------
def summary(config: RunConfig, genotype: str | Path | Genotype | None = None,
            genotype_family: str | None = None) -> dict[str, Any]:
    """Parameters (auxiliary heads apart) and multiply-adds of the search network, or of a genotype's network."""
    torch.manual_seed(config.seed)
    data = describe_data(config)
    if genotype is None:
        network, kind, model = build_search_network(config.model, data), "search supernet", config.model
        channels, layers = model.channels, model.layers
    else:
        genotype = _load_genotype(genotype, genotype_family)
        network, kind, model = build_trained_network(genotype, config, data), "discrete network", config.trained_model()
        channels, layers = config.train.channels or model.channels, config.train.layers or model.layers
    family = genotype.family if genotype is not None else model.family
    if get_registry().family(family).cell == "recurrent":
        sizes = {"embedding_dim": model.embedding_dim, "hidden_size": model.hidden_size}
    else:
        sizes = {"channels": channels, "layers": layers}
    parameters = count_parameters(network)
    example = data.example_input(1)
    return {"network": kind, "family": family, **sizes, "input_shape": list(example.shape[1:]),
            "parameters": parameters["model"], "auxiliary_parameters": parameters["auxiliary"],
            "multiply_adds": multiply_adds(network, example)}


# --- quickstart --------------------------------------------------------------------------------------------
def quickstart(runs: str | Path = "runs", console: Console | None = None, quiet: bool = False,
               overrides: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """The README's first command: search with the ``motifs-quick`` preset, train the genotype, test it."""
    config = load_config("motifs-quick", overrides or {})
    search_dir = search(config, runs, console=console, quiet=quiet)
    train_dir = train(config, search_dir / "genotype.json", runs, console=console, quiet=quiet)
    if console is not None:
        console.print(f"search run: {search_dir}\ntrain run:  {train_dir}\n"
                      f"pictures: {search_dir}/genotype.png, {search_dir}/alphas.png, {train_dir}/metrics.png")
    return search_dir, train_dir
