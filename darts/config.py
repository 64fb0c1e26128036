"""Run configuration: YAML files plus dotted command-line overrides, checked against a typed schema.

One pydantic model per section (nanoGPT's one-dataclass-per-config, with validation). An unknown or
mistyped key is a :class:`ConfigError` naming its dotted path and suggesting the closest known key; a
value of the wrong type names the key, the value and the type expected. ``data`` is checked against the
options of the chosen task. The resolved configuration (every default filled in) is what a run saves.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple, Sequence, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PRESETS = Path(__file__).with_name("presets")


class ConfigError(ValueError):
    """A configuration that does not fit the schema; the message names every offending key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    """The search space and the network around it."""

    family: str | None = Field(None, description="primitive family; null uses the task's default")
    primitives: list[str] | None = Field(None, description="primitive names searched; null uses the family's default set")
    channels: int = Field(16, ge=1, description="initial channels C of the search network")
    layers: int = Field(8, ge=1, description="cells of the search network")
    nodes: int = Field(4, ge=1, description="intermediate nodes per cell")
    multiplier: int | None = Field(None, ge=1, description="nodes concatenated into the cell output; null: all")
    stem_multiplier: int = Field(3, ge=1, description="stem channels = stem_multiplier * channels")
    global_pool: Literal["family", "max", "avg", "avgmax", "lse"] = Field(
        "family", description="pooling before the heads: the family's own (global average pooling for conv "
                              "cells, a recurrent cell's last hidden state), global max or average pooling (over "
                              "time for recurrent cells), avgmax: both, concatenated, or lse: log-sum-exp "
                              "pooling, a smooth maximum (conv cells)")
    pool_sharpness: float = Field(1.0, gt=0, description="lse pooling's r in (1/r) log mean exp(r x): the "
                                                         "average as r -> 0, the maximum as r grows")
    embedding_dim: int = Field(32, ge=1, description="token embedding size (token inputs)")
    hidden_size: int = Field(32, ge=1, description="hidden state size (recurrent family)")
    alphas: Literal["shared", "per_cell"] = Field("shared", description="one alpha per cell type (normal, "
                                                                        "reduce) as in the paper, or one per cell")
    partial_channels: int = Field(1, ge=1, description="PC-DARTS' K: 1/K of each edge's channels go through its "
                                                        "mixed op, the rest bypass it (a divisor of channels)")
    edge_normalization: bool = Field(False, description="PC-DARTS' edge normalisation: a learnt weight per edge, "
                                                        "softmax over the edges entering each node")
    # language models (task ptb); DARTS' names in brackets
    dropout_output: float = Field(0.0, ge=0, lt=1, description="language model: locked dropout on the cell's "
                                                               "outputs before the decoder [dropout]")
    dropout_hidden: float = Field(0.0, ge=0, lt=1, description="language model: variational dropout on the "
                                                               "hidden states entering each node [dropouth]")
    dropout_input: float = Field(0.0, ge=0, lt=1, description="language model: variational dropout on the "
                                                              "cell's input [dropoutx]")
    dropout_embedding: float = Field(0.0, ge=0, lt=1, description="language model: locked dropout on the "
                                                                  "embedded words [dropouti]")
    dropout_words: float = Field(0.0, ge=0, lt=1, description="language model: embedding dropout, whole words "
                                                              "dropped [dropoute]")
    tie_weights: bool = Field(True, description="language model: the decoder shares the embedding's weights "
                                                "(needs embedding_dim == hidden_size)")


class LoopConfig(Section):
    """What a search and a training run share: epochs, batches, the weight optimiser and its schedule."""

    epochs: int = Field(50, ge=1, description="epochs")
    batch_size: int = Field(64, ge=1, description="batch size")
    optimizer: Literal["sgd", "adamw"] = Field(
        "sgd", description="weight optimiser: SGD with momentum (DARTS' recipe), or AdamW (lr is then its rate, "
                           "e.g. 3e-3, and weight_decay its decoupled decay; momentum is unused)")
    lr: float = Field(0.025, gt=0, description="learning rate of the weights")
    lr_min: float = Field(0.001, ge=0, description="final learning rate of the cosine schedule")
    lr_gamma: float = Field(0.97, gt=0, description="per-epoch decay of the exponential schedule")
    schedule: Literal["cosine", "exponential", "constant"] = Field(
        "cosine", description="learning-rate schedule, stepped once per epoch")
    momentum: float = Field(0.9, ge=0, description="SGD momentum")
    weight_decay: float = Field(3e-4, ge=0, description="weight decay (SGD: L2 in the gradient; AdamW: decoupled)")
    grad_clip: float | None = Field(5.0, gt=0, description="gradient-norm clipping of the weights; null: off")
    patience: int = Field(0, ge=0, description="early stopping after this many epochs without improvement; 0: off")
    monitor: str | None = Field(None, description="metric for early stopping and the best epoch, e.g. val_loss; "
                                                  "null: val_accuracy for classification, else val_loss")
    min_steps_per_epoch: int = Field(10, ge=0, description="the batch size is lowered (to 2 at least) so that "
                                                           "every epoch makes at least this many steps on small "
                                                           "data (a search: weight and alpha steps); 0: batch_size "
                                                           "as given")
    loss_limit: float | None = Field(1e6, gt=0, description="a finite loss above this stops the run like a NaN "
                                                             "(a diverging run); null: only NaN and inf stop it")


class ResourceConfig(Section):
    """Resource-aware search: the expected cost of the derived network, kept under a target by a penalty."""

    measure: Literal["parameters", "madds"] = Field("parameters", description="parameters, or multiply-adds of one "
                                                                              "example")
    target: float = Field(..., gt=0, description="the cost the derived network should stay under")
    weight: float = Field(1.0, ge=0, description="weight of the penalty max(0, expected / target - 1)")


class SearchConfig(LoopConfig):
    """The bilevel search: weights on one part of the training data, alphas on the held-out rest."""

    split: float = Field(0.5, gt=0, lt=1, description="fraction of the training data for the weight step; "
                                                       "the rest is the alpha step's held-out split")
    order: Literal["first", "second", "exact"] = Field("second", description="architecture gradient order")
    arch_lr: float = Field(3e-4, gt=0, description="Adam learning rate of the alphas")
    arch_betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas of the alphas")
    arch_weight_decay: float = Field(1e-3, ge=0, description="weight decay of the alphas")
    radius: float = Field(0.01, gt=0, description="finite-difference radius of the second-order term")
    difference: Literal["central", "forward"] = Field(
        "central", description="second-order finite difference: central (the paper) or forward (fast mode: one "
                               "pass fewer, the gradient at w reused from the virtual step)")
    reuse_gradient: bool = Field(False, description="fast mode: the weight step reuses the training gradient of "
                                                    "the second-order virtual step (taken before the alpha "
                                                    "update) instead of its own forward and backward pass")
    genotype: Literal["final", "best"] = Field("final", description="genotype.json: the last epoch's genotype "
                                                                    "(as the paper) or the best by the monitor")
    warmup_epochs: int = Field(0, ge=0, description="the first epochs train the weights only, no alpha step "
                                                    "(PC-DARTS warms up 15 of 50 epochs); less than epochs")
    min_arch_steps: int = Field(100, ge=0, description="a search that plans fewer alpha steps in all warns and "
                                                       "names the keys to change")
    strategy: str = Field("darts", description="the search strategy (darts plugins lists them): how alphas become "
                                               "mixing weights, what the alphas' loss adds, the schedule; darts, "
                                               "pc-darts, fair-darts, gdas, drnas, sdarts, beta-darts, darts-minus")
    strategy_options: dict[str, Any] = Field(default_factory=dict, description="the strategy's own options, checked "
                                                                             "by its schema")
    resource: ResourceConfig | None = Field(None, description="{measure: parameters|madds, target: N, weight: w}: "
                                                                "penalise the derived network's expected cost above "
                                                                "the target, with any strategy; null: off")
    selection: str | None = Field(
        None, description="the selector that chooses the genotype; null: the strategy's (alpha for every built-in). "
                          "alpha: the strongest weight per edge (the paper); perturbation: DARTS-PT, the op whose "
                          "removal hurts the supernet's validation accuracy most, edge by edge, with fine-tuning "
                          "between decisions")
    selection_epochs: float = Field(0.25, ge=0, description="perturbation: epochs of weight fine-tuning after "
                                                            "each decision (a fraction: part of an epoch)")
    selection_examples: int = Field(512, ge=1, description="perturbation: held-out examples that score the "
                                                           "supernet for each candidate (the same ones every time)")

    @model_validator(mode="after")
    def _warmup_before_end(self) -> "SearchConfig":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"search.warmup_epochs ({self.warmup_epochs}) must be less than search.epochs "
                             f"({self.epochs}): the alphas need at least one epoch of steps")
        return self


class TrainConfig(LoopConfig):
    """Training the discrete network from scratch, then testing it."""

    epochs: int = Field(20, ge=1, description="epochs")
    batch_size: int = Field(96, ge=1, description="batch size")
    lr_min: float = Field(0.0, ge=0, description="final learning rate of the cosine schedule")
    valid_fraction: float = Field(0.1, ge=0, lt=1, description="fraction of the training data held out for "
                                                               "validation; 0: none")
    channels: int | None = Field(None, ge=1, description="initial channels of the trained network; null: model.channels")
    layers: int | None = Field(None, ge=1, description="cells of the trained network; null: model.layers")
    auxiliary_weight: float = Field(0.0, ge=0, description="weight of DARTS' auxiliary head after the 2/3 cell in "
                                                           "the loss (0.4 in the paper); 0: no auxiliary head")
    auxiliary_head: Literal["scaled", "darts"] = Field(
        "scaled", description="the auxiliary head's widths: scaled to the channels it reads, in DARTS' proportions "
                              "(2/9 and 4/3 of them), or darts: DARTS' CIFAR head, 128 then 768 channels")
    drop_path: float = Field(0.0, ge=0, lt=1, description="drop-path probability, ramped linearly from 0 over the "
                                                          "epochs (0.2 in the paper); 0: off")
    cutout: int = Field(0, ge=0, description="cutout of this side on training inputs (16 in the paper's CIFAR-10 "
                                             "training); 0: off")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of classification losses "
                                                                "(0.1 in the paper's ImageNet setting)")
    stem: Literal["family", "imagenet"] = Field("family", description="the family's stem, or DARTS' ImageNet "
                                                                      "stem of three stride-2 convolutions")
    model: dict[str, Any] = Field(default_factory=dict, description="model.* keys that differ for the trained "
                                  "network, e.g. {embedding_dim: 850, hidden_size: 850, dropout_words: 0.1}")


class LanguageModelConfig(Section):
    """Language-model training (task ptb), as AWD-LSTM and DARTS' recurrent search train."""

    bptt: int = Field(35, ge=2, description="mean window length of truncated backpropagation through time")
    variable_bptt: bool = Field(True, description="random window lengths around bptt (half of it 5% of the time), "
                                                  "the learning rate scaled to each window; false: fixed windows")
    max_bptt: int | None = Field(None, ge=2, description="longest window; null: bptt + 20")
    ar: float = Field(0.0, ge=0, description="activation regularisation: weight of mean(output ** 2) [alpha]")
    tar: float = Field(0.0, ge=0, description="temporal activation regularisation: weight of "
                                              "mean((h_t - h_t-1) ** 2) [beta]")
    eval_batch_size: int = Field(10, ge=1, description="rows of the validation stream read in parallel")
    test_batch_size: int = Field(1, ge=1, description="rows of the test stream read in parallel")
    nonmono: int = Field(5, ge=1, description="NT-ASGD: switch to averaged weights when validation is worse than "
                                              "the best before the last nonmono epochs")
    averaging: bool = Field(True, description="NT-ASGD in training (search never averages); false: plain SGD")


class BenchConfig(Section):
    """What a benchmark compares: searches of each order, random genotypes, a hand-designed baseline."""

    orders: list[Literal["first", "second", "exact"]] = Field(["first", "second"], description="search orders compared")
    strategies: list[str] = Field([], description="further search strategies (darts plugins lists them), each "
                                                  "searched in every order of bench.orders with its default options "
                                                  "and trained like the search.strategy rows")
    seeds: int = Field(1, ge=1, description="every row runs with this many seeds (seed, seed + 1, ...; the seed "
                                            "also draws generated data); the table shows mean +- std")
    random_genotypes: int = Field(1, ge=0, description="random genotypes of the same space per seed, trained alike "
                                                       "(the paper's random baseline)")
    transfer: str | None = Field("DARTS_V2", description="a published genotype trained alike, its cells moved to "
                                                         "model.family (conv1d, conv2d); null: none")
    baseline: str | None = Field("textcnn", description="hand-designed baseline network; null: none")
    baseline_filters: int = Field(64, ge=1, description="textcnn: filters per convolution width")
    baseline_dropout: float = Field(0.5, ge=0, lt=1, description="textcnn: dropout before the heads")
    lr_grid: list[float] | None = Field(None, description="train each row once per learning rate here and keep the "
                                                          "one with the best final validation monitor (each row, "
                                                          "the baseline included, gets its own best lr on its own "
                                                          "validation split; needs train.valid_fraction > 0); null: "
                                                          "train.lr for every row")
    families: list[str] = Field([], description="further families searched and trained like model.family, each "
                                                "with its own rows, e.g. [recurrent]: a DARTS recurrent cell in "
                                                "place of the conv1d cells")
    family_overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per further family, the dotted config keys that differ for it, e.g. "
                        "{recurrent: {model.global_pool: max, train.lr: 2.0}}")


class LogConfig(Section):
    """What a run records besides its own files (log.txt, events.jsonl, metrics.csv, results.json)."""

    plots: bool = Field(True, description="PNG pictures at the end of a run (genotype, alphas, metrics, "
                                          "diagnostics); false: none, for batches of many short runs (they take "
                                          "seconds each; darts genotype plot draws one later)")
    tensorboard: bool = Field(False, description="TensorBoard event files in RUN/tensorboard: per epoch the losses, "
                                                 "metrics, learning rates, search diagnostics, softmax(alpha) per "
                                                 "edge and the cell diagram (needs the extra [tensorboard])")

    @model_validator(mode="after")
    def _tensorboard_installed(self) -> "LogConfig":
        if not self.tensorboard:
            return self
        from darts.training.tensorboard import INSTALL, available  # only when asked: it imports the training loop

        if not available():
            raise ValueError(f"log.tensorboard needs the tensorboard package, which is not installed: {INSTALL}")
        return self


class RunConfig(Section):
    """A whole run: the task and its data options, the model, the search and the training."""

    task: str = Field(description="built-in or registered task (data set), e.g. motifs, digits, tabular, tokens")
    seed: int = Field(0, description="random seed of everything (data order, initialisation, dropout)")
    device: str = Field("auto", description="where the run computes: auto (CUDA when torch sees a GPU, else the CPU), cpu, "
                                    "cuda, cuda:N or mps; under torchrun each rank takes cuda:LOCAL_RANK")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast of every forward pass, the weights' and the architecture's: fp32 (none), "
                            "bf16 (GPUs and CPUs) or fp16 (with a gradient scaler); weights stay float32")
    data: dict[str, Any] = Field(default_factory=dict, description="options of the task's data (see its presets)")
    task_weights: dict[str, float] | None = Field(None, description="loss weight per target of a multi-task "
                                                                    "task; null: the mean")
    model: ModelConfig = Field(default_factory=ModelConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    lm: LanguageModelConfig = Field(default_factory=LanguageModelConfig)
    log: LogConfig = Field(default_factory=LogConfig)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        from darts.device import DEVICE_PATTERN

        if not DEVICE_PATTERN.match(value):
            raise ValueError(f"device is one of auto, cpu, cuda, cuda:N (a GPU's index) or mps, not {value!r}")
        return value

    def for_family(self, family: str) -> "RunConfig":
        """This configuration with ``model.family`` set to ``family`` and ``bench.family_overrides[family]``
        applied (checked like any configuration)."""
        overrides = {"model.family": family, "model.primitives": None,
                     **self.bench.family_overrides.get(family, {})}
        try:
            return load_config(self.model_dump(mode="json"), overrides)
        except ConfigError as error:
            raise ConfigError(f"bench.family_overrides.{family}: {error}") from None

    def trained_model(self) -> ModelConfig:
        """``model`` with the ``train.model`` keys applied: the settings of the network trained from scratch."""
        return self.model.model_copy(update=self.train.model)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# --- loading ---------------------------------------------------------------------------------------------
def preset_names() -> list[str]:
    """The shipped presets, e.g. ``motifs-quick``, ``motifs-full``."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def read_config_source(source: str | os.PathLike) -> tuple[dict, str]:
    """The raw mapping of a YAML file or a preset name, and a description of where it came from."""
    path = Path(source)
    if not path.exists() and (PRESETS / f"{source}.yaml").exists():
        path = PRESETS / f"{source}.yaml"
    if not path.exists():
        hint = difflib.get_close_matches(str(source), preset_names(), n=1)
        raise ConfigError(f"config {str(source)!r} is neither a file nor a preset; presets: "
                          f"{', '.join(preset_names())}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; CONFIG is a YAML file or a preset name")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); CONFIG is a YAML "
                          "file") from None
    if data is None:
        raise ConfigError(f"{path} is empty; a config needs at least 'task:'")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys to values, got {type(data).__name__}")
    return data, str(path)


def parse_overrides(arguments: Sequence[str]) -> dict[str, Any]:
    """``["--search.epochs", "3", "--model.primitives=[a, b]"]`` -> ``{"search.epochs": 3, ...}`` (values as YAML)."""
    overrides: dict[str, Any] = {}
    items = list(arguments)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or len(item) == 2:
            raise ConfigError(f"unexpected argument {item!r}; overrides look like --search.epochs 3")
        key, has_value, value = item[2:].partition("=")
        if not has_value:
            if not items or items[0].startswith("--"):
                raise ConfigError(f"override --{key} needs a value, e.g. --{key} VALUE")
            value = items.pop(0)
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ConfigError(f"override --{key}: value {value!r} is not valid YAML: {error}") from error
    return overrides


def apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``data`` with each dotted key set (sections are created as needed)."""
    import copy

    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override --{dotted}: {'.'.join(parents[:depth + 1])} is a value, not a section")
            node = child
        node[leaf] = value
    return data


def load_config(source: str | os.PathLike | dict, overrides: dict[str, Any] | Sequence[str] = ()) -> RunConfig:
    """Read a YAML file, a preset name or a mapping, apply the overrides, check everything, fill defaults."""
    if isinstance(source, dict):
        data, origin = source, "config"
    else:
        data, origin = read_config_source(source)
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides)
    data = apply_overrides(data, overrides)
    config = validate(RunConfig, data, origin)
    from darts.tasks import get_task  # the task decides what its data options are

    task = get_task(config.task)
    options = validate(task.Options, config.data, origin, prefix="data.")
    config.data = options.model_dump(mode="json")
    family = config.model.family or task.default_family(options)
    from darts.plugins import get_registry

    options = task.options_for(options, get_registry().family(family))  # an unknown family fails here
    config.data = options.model_dump(mode="json")
    _check_primitive_set(family, config.model.primitives, origin, "model.primitives")
    config.model.family = family
    if config.train.model:  # the trained network's model keys: the same schema as model.*
        checked = validate(ModelConfig, {**config.model.model_dump(), **config.train.model}, origin, "train.model.")
        config.train.model = {key: getattr(checked, key) for key in config.train.model}
        _check_primitive_set(checked.family or family, checked.primitives, origin, "train.model.primitives")
    for name in [*config.bench.families, *config.bench.family_overrides]:
        get_registry().family(name)
    return config


def _check_primitive_set(family: str, names: list[str] | None, origin: str, key: str) -> None:
    """A searchable primitive set: known names, none twice, and at least one that is not ``none``."""
    if names is None:
        return
    from darts.plugins import get_registry

    if not names:
        raise ConfigError(f"{origin}: {key} is empty; name at least one primitive of family {family!r}, or null "
                          "for the family's default set")
    resolved = get_registry().resolve(family, names)
    if all(primitive.name == "none" for primitive in resolved):
        raise ConfigError(f"{origin}: {key} holds only 'none', so every edge would be zero; add a primitive "
                          "that computes something (see 'darts plugins')")


def validate(model: type[BaseModel], data: Any, origin: str, prefix: str = "") -> Any:
    """``model.model_validate(data)``, with every error turned into one readable line."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        lines = [_describe(model, item, prefix) for item in error.errors()]
        raise ConfigError(f"{origin}: invalid configuration:\n  " + "\n  ".join(lines)) from None


def _describe(model: type[BaseModel], item: dict, prefix: str) -> str:
    location = [str(part) for part in item["loc"]]
    key = prefix + ".".join(location)
    if item["type"] == "extra_forbidden":
        known = _known_keys(model, location[:-1])
        close = difflib.get_close_matches(location[-1], known, n=1, cutoff=0.5)
        hint = f"; did you mean {'.'.join([*(prefix.rstrip('.').split('.') if prefix else []), *location[:-1], close[0]])!r}?" \
            if close else ""
        return f"unknown key {key!r}{hint} (known here: {', '.join(known)})"
    if item["type"] == "missing":
        return f"missing key {key!r}"
    if item["type"] == "value_error":  # a check across keys: the message names them
        return item["msg"].removeprefix("Value error, ")
    return f"{key}: {item['msg']} (got {item.get('input')!r})"


def _known_keys(model: type[BaseModel], location: list[str]) -> list[str]:
    for part in location:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


class SchemaField(NamedTuple):
    """One configurable key: its dotted name, type, default, meaning, and the task whose options hold it."""

    key: str
    kind: str
    default: str
    description: str
    task: str | None = None


def schema_fields(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[SchemaField]:
    """Every configurable key of ``model``, in schema order; ``data.*`` once per registered task."""
    fields = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if model is RunConfig and name == "data":
            from darts.tasks import get_task, task_names

            for task in task_names():
                fields += [entry._replace(task=task) for entry in schema_fields(get_task(task).Options, "data.")]
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields += schema_fields(annotation, f"{prefix}{name}.")
            continue
        if get_origin(annotation) is Literal:
            kind = "one of " + ", ".join(map(str, get_args(annotation)))
        else:
            kind = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        default = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
        fields.append(SchemaField(f"{prefix}{name}", kind, default, field.description or ""))
    return fields


def schema_help(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """One line per configurable key: ``--search.epochs (int, default 50): epochs``."""
    return [(f"[task {f.task}] " if f.task else "") + f"--{f.key} ({f.kind}, {f.default}): {f.description}"
            for f in schema_fields(model, prefix)]


# --- CANDLE model files -------------------------------------------------------------------------------------
#: CANDLE P3B5 model-file keys that mean something here, and the configuration keys they set
CANDLE_KEYS: dict[str, tuple[str, ...]] = {
    "learning_rate": ("search.lr", "train.lr"),
    "learning_rate_min": ("search.lr_min", "train.lr_min"),
    "momentum": ("search.momentum", "train.momentum"),
    "weight_decay": ("search.weight_decay", "train.weight_decay"),
    "grad_clip": ("search.grad_clip", "train.grad_clip"),
    "batch_size": ("search.batch_size", "train.batch_size"),
    "epochs": ("search.epochs", "train.epochs"),
    "seed": ("seed",),
    "rng_seed": ("seed",),
    "unrolled": ("search.order",),
    "arch_learning_rate": ("search.arch_lr",),
    "arch_weight_decay": ("search.arch_weight_decay",),
}
#: CANDLE keys that are rates of CANDLE's optimiser, SGD with momentum: they set it (a preset may use AdamW)
CANDLE_SGD_KEYS = ("learning_rate", "learning_rate_min", "momentum", "weight_decay")
#: CANDLE keys with no meaning here, and why
CANDLE_IGNORED = {
    "model_name": "the task and preset name the model",
    "data_url": "darts never downloads; give your P3B3 folder with --data.path",
    "train_data": "darts never downloads; give your P3B3 folder with --data.path",
    "log_interval": "progress bars and per-epoch logs replace it",
    "save_path": "runs go to --runs",
}


def candle_overrides(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """The overrides a CANDLE model file (``[Global_Params]``, ``key = value``) means here, and the keys
    ignored with the reason. An unknown key is an error naming it and the known ones. A rate of CANDLE's
    optimiser (:data:`CANDLE_SGD_KEYS`) also sets SGD, the optimiser it is a rate of."""
    import ast
    import configparser

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: CANDLE model file not found")
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
    parser.optionxform = str  # keep the keys' case
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise ConfigError(f"{path}: not a CANDLE model file ([Global_Params] with key = value lines): {error}") from None
    overrides: dict[str, Any] = {}
    ignored: dict[str, str] = {}
    for section in parser.sections():
        for key, text in parser.items(section):
            if key in CANDLE_IGNORED:
                ignored[key] = CANDLE_IGNORED[key]
                continue
            if key not in CANDLE_KEYS:
                known = sorted([*CANDLE_KEYS, *CANDLE_IGNORED])
                hint = difflib.get_close_matches(key, known, n=1)
                raise ConfigError(f"{path}: CANDLE key {key!r} has no meaning here"
                                  + (f"; did you mean {hint[0]!r}?" if hint else "") + f" (known: {', '.join(known)})")
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                value = text.strip()
            if key == "unrolled":
                flag = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
                value = "second" if flag else "first"
            for target in CANDLE_KEYS[key]:
                overrides[target] = value
            if key in CANDLE_SGD_KEYS:
                overrides["search.optimizer"] = overrides["train.optimizer"] = "sgd"
    if not overrides and not ignored:
        raise ConfigError(f"{path}: no key = value lines under a [section] heading; not a CANDLE model file")
    return overrides, ignored
