"""The recipe of examples with targets (:class:`darts.tasks.TaskData`): classification and regression.

A search splits the training examples at random between the weights and the alphas (``search.split``); a
training holds ``train.valid_fraction`` out for validation; results are read against the majority class.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from darts import distributed
from darts.assemble import (head_factory, is_recurrent, pool_factory, recurrent_pool, stem_factory,
                            tokens_for_recurrent)
from darts.data.augment import Compose, Cutout, TransformedDataset
from darts.data.datasets import split_labels
from darts.plugins import get_registry
from darts.recipes import Recipe
from darts.search_space import Network, RecurrentNetwork, RecurrentSearchNetwork, SearchNetwork
from darts.search_space.network import scaled_auxiliary
from darts.training.callbacks import ArchitectureStep, AuxiliaryLoss, DropPathSchedule
from darts.training.objective import TaskLoss, default_monitor, majority_accuracy
from darts.training.trainer import Callback, Trainer


def split_dataset(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A random split: ``fraction`` of ``data`` (at least one item) and the rest, from ``seed`` only."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    cut = min(len(data), max(1, round(fraction * len(data))))
    return Subset(data, order[:cut]), Subset(data, order[cut:])


def augmented(data: Dataset, transform) -> Dataset:
    """``data`` with a random transform of each input, if there is one to apply."""
    if transform is None or (isinstance(transform, Compose) and not transform.transforms):
        return data
    return TransformedDataset(data, transform)


def budget_batch_size(examples: int, loop) -> int:
    """``loop.batch_size`` (``search`` or ``train``), lowered (never below 2) so that ``examples`` give
    ``loop.min_steps_per_epoch`` batches an epoch: on small data the weights and alphas still get steps."""
    if not loop.min_steps_per_epoch:
        return loop.batch_size
    per_rank = examples // distributed.world_size()  # under torchrun each rank reads its share, batch_size each
    return min(loop.batch_size, max(2, per_rank // loop.min_steps_per_epoch))


class ExamplesRecipe(Recipe):
    """Examples ``(input, target)`` with one head per target; float inputs or token ids."""

    # --- networks ------------------------------------------------------------------------------------------
    def check_family(self, family, what: str) -> None:
        """Recurrent families read token ids; a feedforward family must match the inputs' spatial dimensions
        (token ids count as one, a sequence)."""
        data = self.data
        if family.cell == "recurrent":
            tokens_for_recurrent(data, family.name)
            return
        dims = 1 if data.vocab_size is not None else data.example_input(1).dim() - 2
        if dims != family.spatial_dims:
            fitting = [f.name for f in map(get_registry().family, get_registry().family_names)
                       if f.cell == "feedforward" and f.spatial_dims == dims]
            raise ValueError(f"{what} {family.name!r} works on inputs with {family.spatial_dims} spatial dimension(s), "
                             f"but this task's inputs have {dims}; families that fit: {', '.join(fitting) or '(none)'}")

    def search_network(self, model, options: dict) -> nn.Module:
        """A :class:`SearchNetwork` (or a recurrent classifier's supernet) with one head per target."""
        data, head = self.data, head_factory(self.data)
        if is_recurrent(model.family):
            return RecurrentSearchNetwork(tokens_for_recurrent(data, model.family), model.embedding_dim,
                                          model.hidden_size, 0, nodes=model.nodes, family=model.family,
                                          primitives=model.primitives, head=head, pool=recurrent_pool(model))
        return SearchNetwork(model.family, data.in_channels or model.embedding_dim, model.channels, 0,
                             layers=model.layers, nodes=model.nodes, multiplier=model.multiplier,
                             primitives=model.primitives, stem_multiplier=model.stem_multiplier,
                             stem=stem_factory(model, data), head=head, pool=pool_factory(model),
                             alphas=model.alphas, **options)

    def network(self, genotype, model, channels, layers, auxiliary, imagenet_stem, auxiliary_head) -> nn.Module:
        """A :class:`Network` (or a recurrent classifier) of the genotype, with one head per target."""
        data, head = self.data, head_factory(self.data)
        if is_recurrent(genotype.family):
            return RecurrentNetwork(genotype, tokens_for_recurrent(data, genotype.family), model.embedding_dim,
                                    model.hidden_size, 0, head=head, pool=recurrent_pool(model))
        return Network(genotype, data.in_channels or model.embedding_dim, channels or model.channels, 0,
                       layers=layers or model.layers, stem_multiplier=model.stem_multiplier,
                       stem=stem_factory(model, data), head=head, pool=pool_factory(model),
                       auxiliary=head if auxiliary else False, imagenet_stem=imagenet_stem,
                       auxiliary_widths=scaled_auxiliary if auxiliary_head == "scaled" else None)

    # --- search and training -------------------------------------------------------------------------------
    def loss(self, config, label_smoothing: float = 0.0) -> TaskLoss:
        """Cross-entropy per classification target, mean squared error per regression target, weighted."""
        return TaskLoss(self.data.targets, self.data.multi_task, config.task_weights, label_smoothing)

    def _monitor(self, loop, validation: bool) -> str:
        return loop.monitor or default_monitor(self.data.targets, validation)

    def search_trainer(self, context, network, optimizer, architecture, callbacks):
        """Weights on one random part of the training examples, alphas on the other (``search.split``); the
        batches shrink on small data so that every epoch makes ``search.min_steps_per_epoch`` steps."""
        config, s = context.config, context.config.search
        weight_split, alpha_split = (augmented(part, self.data.augment)
                                     for part in split_dataset(self.data.train, s.split, config.seed))
        batch_size = budget_batch_size(min(len(weight_split), len(alpha_split)), s)
        step = ArchitectureStep(architecture, alpha_split, batch_size, config.seed, s.warmup_epochs, s.loss_limit)
        trainer = Trainer(network, optimizer, architecture.loss_fn, weight_split, batch_size, s.epochs, alpha_split,
                          [step, *callbacks], config.seed, self._monitor(s, True), batch_norm_statistics="batch",
                          precision=context.precision)
        sizes = f"{len(weight_split)} examples for the weights, {len(alpha_split)} for the alphas"
        if batch_size != s.batch_size:
            sizes += f", batches of {batch_size} (search.min_steps_per_epoch {s.min_steps_per_epoch})"
        return trainer, sizes, alpha_split

    def check_budget(self, context, trainer: Trainer) -> None:
        """A warning, naming the keys to change, when the search plans fewer alpha steps than
        ``search.min_arch_steps``."""
        s, batches = context.config.search, len(trainer.train_batches())
        planned = (s.epochs - s.warmup_epochs) * batches
        if planned >= s.min_arch_steps:
            return
        context.log.event("warning", f"warning: the alphas get only {planned} steps ({s.epochs - s.warmup_epochs} "
                          f"epochs after warm-up x {batches} batches of {trainer.batch_size}), fewer than "
                          f"search.min_arch_steps ({s.min_arch_steps}); raise search.epochs, lower search.batch_size "
                          "or search.warmup_epochs, or give more data", planned_arch_steps=planned)

    def train_trainer(self, context, model, optimizer, common: Sequence[Callback], extra: Sequence[Callback]):
        """SGD on all but ``train.valid_fraction`` of the training examples (augmented, with cutout), with
        DARTS' auxiliary loss and drop path where the network has them."""
        config, t, data = context.config, context.config.train, self.data
        if t.valid_fraction > 0:
            train_split, valid_split = split_dataset(data.train, 1 - t.valid_fraction, config.seed)
        else:
            train_split, valid_split = data.train, None
        cutout = [Cutout(t.cutout)] if t.cutout else []
        train_split = augmented(train_split, Compose([data.augment, *cutout]) if data.augment else Compose(cutout))
        recipe: list[Callback] = []
        if t.auxiliary_weight > 0 and hasattr(model, "auxiliary_head"):
            recipe.append(AuxiliaryLoss(t.auxiliary_weight))
        if t.drop_path > 0 and hasattr(model, "drop_path_prob"):
            recipe.append(DropPathSchedule(t.drop_path))
        batch_size = budget_batch_size(len(train_split), t)
        trainer = Trainer(model, optimizer, self.loss(config, t.label_smoothing), train_split, batch_size, t.epochs,
                          valid_split, [*common, *recipe, *extra], config.seed,
                          self._monitor(t, valid_split is not None), precision=context.precision)
        train_size = f"{len(train_split)} training examples" + (
            f" in batches of {batch_size} (train.min_steps_per_epoch {t.min_steps_per_epoch})"
            if batch_size != t.batch_size else "")
        return trainer, train_size

    # --- results -------------------------------------------------------------------------------------------
    def test(self, trainer: Trainer, config) -> dict[str, float]:
        """Loss and metrics on the test examples."""
        return trainer.evaluate(self.data.test, "test_")

    def evaluate(self, model, config, batch_size: int, statistics: str, precision) -> dict[str, float]:
        """The test metrics of ``model`` as it is (a frozen optimiser, no epoch run)."""
        data = self.data
        frozen = torch.optim.SGD(model.parameters(), 0.0)
        trainer = Trainer(model, frozen, self.loss(config), data.train, batch_size, 0,
                          batch_norm_statistics=statistics, precision=precision)
        return trainer.evaluate(data.test, "test_")

    def baseline(self) -> dict[str, float]:
        """The test accuracy of each classification target's majority class in training."""
        data = self.data
        names = [t.name for t in data.targets]
        train, test = split_labels(data.train, names), split_labels(data.test, names)
        return {f"majority_{name}_accuracy" if data.multi_task else "majority_accuracy": value
                for name, value in majority_accuracy(data.targets, train, test).items()}

    def target_names(self) -> list[str]:
        """A multi-task run's targets."""
        return [t.name for t in self.data.targets] if self.data.multi_task else []

