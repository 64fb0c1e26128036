"""Networks for a task: the search supernet and the discrete network, with one head per target.

Float inputs go straight into the family's stem; token ids pass an embedding first (transposed to
channels-first, so a conv1d stem runs over the sequence whatever the embedding size). Also the figures
``darts summary`` reports: parameters (auxiliary heads apart, as the DARTS paper counts) and multiply-adds.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from darts.config import ModelConfig
from darts.genotype import Genotype
from darts.plugins import load_genotype
from darts.plugins import get_registry
from darts.search_space.recurrent import POOLS as RECURRENT_POOLS
from darts.tasks import Target, TaskData

#: parameters under a module of this name are an auxiliary head: trained, but not counted as the paper counts
AUXILIARY = "auxiliary_head"


class TaskHeads(nn.Module):
    """One linear head per target; returns ``{target: output}`` (regression outputs squeezed to (batch,))."""

    def __init__(self, in_features: int, targets: Sequence[Target]) -> None:
        super().__init__()
        self.kinds = {t.name: t.kind for t in targets}
        self.heads = nn.ModuleDict({t.name: nn.Linear(in_features, t.outputs) for t in targets})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: _squeeze(head(features), self.kinds[name]) for name, head in self.heads.items()}


class SingleHead(nn.Linear):
    """The head of a single target (regression outputs squeezed to (batch,))."""

    def __init__(self, in_features: int, target: Target) -> None:
        super().__init__(in_features, target.outputs)
        self.kind = target.kind

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return _squeeze(super().forward(features), self.kind)


def _squeeze(output: torch.Tensor, kind: str) -> torch.Tensor:
    return output.squeeze(-1) if kind == "regression" else output


class TokenStem(nn.Module):
    """Token ids (batch, length) -> embedding (batch, embedding_dim, length) -> the family's stem."""

    def __init__(self, vocab_size: int, embedding_dim: int, stem: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.stem = stem

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.stem(self.embedding(tokens).transpose(1, -1))


class GlobalPool(nn.Module):
    """Global pooling over every dimension after the channels: ``max`` or ``avg`` (batch, channels, ...) ->
    (batch, channels); ``avgmax``, both concatenated (batch, 2 * channels; :attr:`expansion` is 2); or
    ``lse``, log-sum-exp pooling (1/r) log mean exp(r x) with r = ``sharpness``, a smooth maximum that lies
    between the average and the maximum and passes a gradient to every position."""

    KINDS = ("max", "avg", "avgmax", "lse")

    def __init__(self, kind: str, sharpness: float = 1.0) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"global pooling is one of {', '.join(self.KINDS)}, got {kind!r}")
        if not sharpness > 0:
            raise ValueError(f"the sharpness of lse pooling must be positive, got {sharpness}")
        self.kind, self.sharpness = kind, sharpness
        self.expansion = 2 if kind == "avgmax" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        if self.kind == "avgmax":
            return torch.cat([flat.mean(-1), flat.amax(-1)], dim=1)
        if self.kind == "lse":
            r = self.sharpness
            return (torch.logsumexp(r * flat, dim=-1) - math.log(flat.shape[-1])) / r
        return flat.amax(-1) if self.kind == "max" else flat.mean(-1)


def pool_factory(model: ModelConfig):
    """A builder of the global pooling that ``model.global_pool`` names, or None for the family's own."""
    if model.global_pool == "family":
        return None
    return lambda: GlobalPool(model.global_pool, model.pool_sharpness)


def head_factory(data: TaskData):
    """A builder ``features -> head``: one linear head per target of ``data`` (several for a multi-task set)."""
    if data.multi_task:
        return lambda features: TaskHeads(features, data.targets)
    return lambda features: SingleHead(features, data.targets[0])


def stem_factory(model: ModelConfig, data: TaskData):
    """A builder ``channels -> stem`` for ``data``: the task's own, an embedding before the family's stem for
    token ids, or None for the family's stem on float inputs."""
    if data.stem is not None:
        return data.stem
    if data.vocab_size is None:
        return None
    family = get_registry().family(model.family)
    return lambda channels: TokenStem(data.vocab_size, model.embedding_dim, family.stem(model.embedding_dim, channels))


def is_recurrent(family: str) -> bool:
    """Whether the registered ``family`` has recurrent cells."""
    return get_registry().family(family).cell == "recurrent"


def tokens_for_recurrent(data: TaskData, family: str) -> int:
    """The vocabulary size of ``data``, which a recurrent ``family`` reads; a ValueError for float inputs."""
    if data.vocab_size is None:
        raise ValueError(f"family {family!r} reads token ids; this task's inputs are float channels "
                         "(choose a feedforward family such as conv1d or linear)")
    return data.vocab_size


def check_family_fits(family: str, data: TaskData, what: str = "family") -> None:
    """Raise a ValueError naming ``what`` if networks of ``family`` cannot read ``data`` (its recipe decides: a
    feedforward family must match the inputs' spatial dimensions, a language model needs a recurrent one)."""
    data.recipe().check_family(get_registry().family(family), what)


def build_search_network(model: ModelConfig, data: TaskData, network_options: dict | None = None):
    """The DARTS supernet of ``model`` for ``data``'s inputs and targets; ``network_options`` (a search
    strategy's ``partial_channels`` and ``edge_normalization``) replace the model's own."""
    check_family_fits(model.family, data)
    options = {"partial_channels": model.partial_channels, "edge_normalization": model.edge_normalization,
               **(network_options or {})}
    pc_darts = options["partial_channels"] != 1 or options["edge_normalization"]
    if pc_darts and is_recurrent(model.family):
        raise ValueError("model.partial_channels and model.edge_normalization (PC-DARTS) apply to convolutional "
                         "and linear cells; recurrent cells have no channels to split: leave them at 1 and false")
    return data.recipe().search_network(model, options)


def build_network(genotype: Genotype | str, model: ModelConfig, data: TaskData, channels: int | None = None,
                  layers: int | None = None, auxiliary: bool = False, imagenet_stem: bool = False,
                  auxiliary_head: str = "scaled") -> nn.Module:
    """The discrete network of ``genotype`` (a file, a name or a Genotype) for ``data``, to train from scratch.

    ``auxiliary`` adds DARTS' auxiliary head (one output per target), ``scaled`` to the channels it reads or
    ``darts`` (DARTS' CIFAR widths, 128 and 768); ``imagenet_stem`` DARTS' ImageNet stems."""
    genotype = load_genotype(genotype)
    check_family_fits(genotype.family, data, what="the genotype's family")
    model = model.model_copy(update={"family": genotype.family})
    return data.recipe().network(genotype, model, channels, layers, auxiliary, imagenet_stem, auxiliary_head)


def build_trained_network(genotype: Genotype | str, config, data: TaskData) -> nn.Module:
    """``build_network`` with the ``train.*`` settings: width, depth, auxiliary head and stem."""
    t = config.train
    return build_network(genotype, config.trained_model(), data, t.channels, t.layers, auxiliary=t.auxiliary_weight > 0,
                         imagenet_stem=t.stem == "imagenet", auxiliary_head=t.auxiliary_head)


def recurrent_pool(model: ModelConfig) -> str:
    """A recurrent classifier reads its last hidden state (the family's way) or pools the states over time."""
    if model.global_pool not in ("family", *RECURRENT_POOLS):
        raise ValueError(f"model.global_pool {model.global_pool!r} applies to conv and linear cells; a recurrent "
                         "cell's states are pooled by family (the last state), max or avg")
    return "last" if model.global_pool == "family" else model.global_pool


class TextCNN(nn.Module):
    """The classic text CNN (Kim 2014) with one head per target: embedding, parallel convolutions of
    several widths with ReLU, global max pooling over the sequence, dropout, linear heads."""

    def __init__(self, vocab_size: int, embedding_dim: int, filters: int, data: TaskData,
                 widths: Sequence[int] = (3, 4, 5), dropout: float = 0.5) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.convolutions = nn.ModuleList(nn.Conv1d(embedding_dim, filters, w, padding=w // 2) for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.head = head_factory(data)(filters * len(widths))

    def forward(self, tokens: torch.Tensor):
        embedded = self.embedding(tokens).transpose(1, 2)
        features = torch.cat([torch.relu(conv(embedded)).amax(-1) for conv in self.convolutions], dim=1)
        return self.head(self.dropout(features))


def _textcnn(config, data: TaskData) -> nn.Module:
    if data.vocab_size is None:
        raise ValueError("the textcnn baseline reads token ids; this task's inputs are float channels")
    return TextCNN(data.vocab_size, config.model.embedding_dim, config.bench.baseline_filters, data,
                   dropout=config.bench.baseline_dropout)


#: hand-designed networks to compare searched ones with: name -> builder(config, data)
BASELINES = {"textcnn": _textcnn}


def register_baseline(name: str, builder) -> None:
    """Add a hand-designed network ``builder(config, data) -> nn.Module`` for ``darts.workflows.train_baseline``."""
    if name in BASELINES and BASELINES[name] is not builder:
        raise ValueError(f"baseline {name!r} is registered already")
    BASELINES[name] = builder


def build_baseline(name: str, config, data: TaskData) -> nn.Module:
    if name not in BASELINES:
        from darts.registry import UnknownNameError, unknown_name_message

        raise UnknownNameError(unknown_name_message("baseline", name, BASELINES))
    return BASELINES[name](config, data)


def count_parameters(network: nn.Module) -> dict[str, int]:
    """Trainable weights: ``total``, ``auxiliary`` (auxiliary heads) and ``model`` (total without them)."""
    total = auxiliary = 0
    for name, parameter in network.named_parameters():
        total += parameter.numel()
        if AUXILIARY in name.split("."):
            auxiliary += parameter.numel()
    return {"model": total - auxiliary, "auxiliary": auxiliary, "total": total}


def multiply_adds(network: nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of one forward pass on ``example`` (convolutions and matrix products, as papers count)."""
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            network(example)
    finally:
        network.train(was_training)
    return counter.get_total_flops() // 2
