"""Recipes: how a kind of task data is searched, trained and tested, provided by the data itself.

The workflows (:mod:`darts.workflows`) run one straight line for every task: configuration -> data and
search space -> search -> genotype -> network -> training -> results. Wherever the kind of data decides a step
(which networks read it, its loss, how a search splits it between weights and alphas, what tests it and what
baseline a result is read against), they ask the data's recipe, ``data.recipe()``:

- :class:`darts.recipes.examples.ExamplesRecipe`, for examples with targets (:class:`darts.tasks.TaskData`):
  classification and regression, one head per target;
- :class:`darts.recipes.language_model.LanguageModelRecipe`, for token streams to model
  (:class:`darts.tasks.language.CorpusData`): DARTS' recurrent search in the AWD-LSTM backbone.

A task whose data is neither provides its own recipe the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from darts.architecture import Architecture
    from darts.config import ModelConfig, RunConfig, SearchConfig
    from darts.device import Precision
    from darts.family import Family
    from darts.genotype import Genotype
    from darts.strategy import Selector
    from darts.training.trainer import Callback, Trainer


class Recipe:
    """The steps that depend on the kind of data; ``self.data`` is the task's data."""

    def __init__(self, data: Any) -> None:
        self.data = data

    # --- networks ------------------------------------------------------------------------------------------
    def check_family(self, family: "Family", what: str) -> None:
        """Raise a ValueError naming ``what`` (a key) if networks of ``family`` cannot read this data."""
        raise NotImplementedError

    def search_network(self, model: "ModelConfig", options: dict) -> "nn.Module":
        """The supernet of ``model`` (a checked family) for this data; ``options``: PC-DARTS' settings."""
        raise NotImplementedError

    def network(self, genotype: "Genotype", model: "ModelConfig", channels: int | None, layers: int | None,
                auxiliary: bool, imagenet_stem: bool, auxiliary_head: str) -> "nn.Module":
        """The discrete network of ``genotype`` for this data, to train from scratch."""
        raise NotImplementedError

    # --- search and training -------------------------------------------------------------------------------
    def check_search(self, search: "SearchConfig", selector: "Selector") -> None:
        """Raise a ValueError for search settings that do not apply to this kind of data (none by default)."""

    def loss(self, config: "RunConfig", label_smoothing: float = 0.0) -> Callable:
        """The loss of ``(outputs, targets)`` the weights and the alphas minimise."""
        raise NotImplementedError

    def search_trainer(self, context: Any, network: "nn.Module", optimizer: Any, architecture: "Architecture",
                       callbacks: Sequence["Callback"]) -> tuple["Trainer", str, "Dataset | None"]:
        """The search loop: (trainer with the alpha step among its callbacks, a description of the data's
        split, the held-out examples a selector may score the supernet on, or None)."""
        raise NotImplementedError

    def check_budget(self, context: Any, trainer: "Trainer") -> None:
        """Log a warning when the planned search gives the alphas too few steps (nothing by default)."""

    def train_trainer(self, context: Any, model: "nn.Module", optimizer: Any, common: Sequence["Callback"],
                      extra: Sequence["Callback"]) -> tuple["Trainer", str]:
        """The loop that trains a discrete network from scratch (with the run's ``common`` callbacks, the
        recipe's own, then the caller's ``extra`` ones), and a description of its training data."""
        raise NotImplementedError

    # --- results -------------------------------------------------------------------------------------------
    def test(self, trainer: "Trainer", config: "RunConfig") -> dict[str, float]:
        """The trained model's metrics on the test split (``test_*``)."""
        raise NotImplementedError

    def evaluate(self, model: "nn.Module", config: "RunConfig", batch_size: int, statistics: str,
                 precision: "Precision") -> dict[str, float]:
        """A saved model's test metrics, without training it (``darts evaluate``)."""
        raise NotImplementedError

    def baseline(self) -> dict[str, float]:
        """The figures a result is read against, computed without a network."""
        raise NotImplementedError

    def target_names(self) -> list[str]:
        """The targets whose metrics come one by one (a multi-task run's); the headline shows their means."""
        return []

    def check_export(self) -> None:
        """Raise a ValueError if a trained network of this data cannot be exported (exportable by default)."""
