"""Tasks: named data sets with their targets, the family they suit, and the options a config may set.

A task turns its options into a :class:`TaskData`: a training and a test split, what the inputs are
(feature channels or token ids) and the targets (one, or several for a multi-task model whose labels come
as a dict). The built-in tasks run with no files; others register with :func:`register_task`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch.utils.data import Dataset

from darts.registry import UnknownNameError, unknown_name_message

if TYPE_CHECKING:
    from darts.recipes import Recipe

TargetKind = Literal["classification", "regression"]


@dataclass(frozen=True)
class Target:
    """One prediction target: a name, classification (with its class count) or regression."""

    name: str
    kind: TargetKind = "classification"
    classes: int = 0

    def __post_init__(self) -> None:
        if self.kind == "classification" and self.classes < 2:
            raise ValueError(f"target {self.name!r}: a classification target needs at least 2 classes")

    @property
    def outputs(self) -> int:
        return self.classes if self.kind == "classification" else 1


@dataclass
class TaskData:
    """The splits of a task and what a network needs to know about them.

    ``in_channels`` for float inputs (batch, channels, ...); ``vocab_size`` for token ids (batch, length).
    ``multi_task``: targets come as ``{name: labels}``; otherwise as one tensor for the single target.
    ``stem``: optional ``stem(channels) -> nn.Module`` replacing the family's stem, for inputs with a
    structure of their own (e.g. two feature groups encoded apart); ``artifacts``: JSON files a run saves;
    ``augment``: a random transform of one training input, applied to the examples the weights learn from.
    """

    train: Dataset
    test: Dataset
    targets: tuple[Target, ...]
    multi_task: bool = False
    in_channels: int | None = None
    vocab_size: int | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    stem: Callable[[int], Any] | None = None
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if (self.in_channels is None) == (self.vocab_size is None):
            raise ValueError("TaskData needs exactly one of in_channels (float inputs) and vocab_size (token ids)")
        if not self.multi_task and len(self.targets) != 1:
            raise ValueError("a single-task TaskData has exactly one target; set multi_task=True for several")

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A batch made of the first training example, for shapes, summaries and multiply-add counts."""
        x = self.train[0][0]
        return x.unsqueeze(0).expand(batch, *x.shape).clone()

    def recipe(self) -> "Recipe":
        """How these data are searched, trained and tested: :class:`~darts.recipes.examples.ExamplesRecipe`."""
        from darts.recipes.examples import ExamplesRecipe

        return ExamplesRecipe(self)


class TaskOptions(BaseModel):
    """Base of a task's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Task:
    """A named data set. Subclasses set ``name``, ``family``, ``description``, ``Options`` and ``load``."""

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[TaskOptions]] = TaskOptions

    def load(self, options: Any, seed: int) -> TaskData:
        raise NotImplementedError

    def spec(self, options: Any, seed: int) -> TaskData:
        """What a network needs to know (input shape, targets) without the user's files when possible;
        ``darts summary`` uses it. By default the data itself."""
        return self.load(options, seed)

    def default_family(self, options: Any) -> str:
        """The family a config without ``model.family`` gets."""
        return self.family

    def options_for(self, options: Any, family: Any) -> Any:
        """``options`` adjusted to the :class:`~darts.family.Family` whose networks read the data (the
        resolved configuration shows the result); by default unchanged."""
        return options


_TASKS: dict[str, Task] = {}


def register_task(task: Task | type[Task]) -> Task:
    """Add a task (an instance or a class, usable as a decorator on the class); a taken name is an error."""
    instance = task() if isinstance(task, type) else task
    previous = _TASKS.get(instance.name)
    if previous is not None and _origin(previous) != _origin(instance):
        raise ValueError(f"task {instance.name!r} is registered already (by {_origin(previous)})")
    _TASKS[instance.name] = instance
    return task


def _register_builtin() -> None:
    for module in ("darts.tasks.builtin", "darts.tasks.p3b5", "darts.tasks.vision", "darts.tasks.language",
                   "darts.tasks.table"):  # they register themselves
        importlib.import_module(module)


def _origin(task: Task) -> str:
    """Where a task's class is defined (the same file imported under two module names is the same task)."""
    import inspect

    try:
        return f"{inspect.getfile(type(task))}:{type(task).__qualname__}"
    except TypeError:
        return type(task).__qualname__


def get_task(name: str) -> Task:
    _register_builtin()
    if name not in _TASKS:
        raise UnknownNameError(unknown_name_message("task", name, _TASKS))
    return _TASKS[name]


def task_names() -> list[str]:
    _register_builtin()
    return sorted(_TASKS)
