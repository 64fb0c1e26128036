"""Search strategies: how a search turns alphas into mixing weights, what it adds to the alphas' loss, which
gradient orders it supports, its schedule over the epochs, and which selector derives the genotype by default.

A strategy is a :class:`Strategy` subclass with a ``name``, an ``Options`` schema (pydantic, unknown keys
refused) and the methods below; a plugin returns its classes from ``darts_add_strategies()``, or registers
one in-process with :func:`darts.register_strategy`. The supernet asks its strategy for the mixing weights
in one of four modes:

* ``"weights"``: the forward pass of a weight step (training mode);
* ``"alphas"``: a pass of the architecture step (inside :class:`darts.architecture.Architecture`);
* ``"evaluate"``: the supernet evaluated (eval mode);
* ``"derive"``: the weights a genotype is derived from (deterministic; no sampling, no auxiliary terms).

Stochastic strategies draw from torch's global generator: the architecture step runs every pass over one
batch on one seeded stream, so a finite difference compares like with like, and a checkpoint's generator
state makes a resumed search draw the same numbers. A *selector* chooses the genotype from the trained
supernet (the argmax of the derived weights, or by perturbation).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, ValidationError

Mode = Literal["weights", "alphas", "evaluate", "derive"]
MODES: tuple[str, ...] = ("weights", "alphas", "evaluate", "derive")
ORDERS = frozenset({"first", "second", "exact"})


class StrategyError(ValueError):
    """A strategy that cannot run as configured, or a plugin's strategy that breaks the contract."""


class StrategyOptions(BaseModel):
    """Base of every strategy's options: typed, and unknown keys are an error naming them."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class SearchSpaceInfo:
    """What a strategy may check before any data is loaded: the family's name and cell kind, the primitive
    names of the space, and the configured gradient order."""

    family: str
    cell: str  # "feedforward" or "recurrent"
    primitives: tuple[str, ...]
    order: str
    spatial_dims: int = 0


class Strategy:
    """The paper's continuous relaxation, as the base every strategy refines: softmax(alpha) in every mode,
    no penalty, no schedule, every order, the ``alpha`` selector."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: the gradient orders it supports
    orders: ClassVar[frozenset[str]] = ORDERS
    #: the cell kinds it supports ("feedforward", "recurrent")
    cells: ClassVar[frozenset[str]] = frozenset({"feedforward", "recurrent"})
    #: the selector used when ``search.selection`` is not given
    selector: ClassVar[str] = "alpha"

    class Options(StrategyOptions):
        pass

    def __init__(self, options: StrategyOptions | Mapping[str, Any] | None = None) -> None:
        self.options = options if isinstance(options, StrategyOptions) else self.Options(**dict(options or {}))
        self.epoch, self.epochs = 0, 1
        self.primitives: tuple[str, ...] = ()

    # --- before anything runs ---------------------------------------------------------------------
    def check(self, space: SearchSpaceInfo) -> None:
        """Raise :class:`StrategyError` if the strategy cannot search ``space``; the default checks the order
        and cell kind. Subclasses extend it (required primitives, families)."""
        if space.order not in self.orders:
            raise StrategyError(f"search.strategy {self.name!r} supports the orders {', '.join(sorted(self.orders))}, "
                                f"not {space.order!r}: set search.order to one of them")
        if space.cell not in self.cells:
            raise StrategyError(f"search.strategy {self.name!r} searches {', '.join(sorted(self.cells))} cells; "
                                f"family {space.family!r} has {space.cell} cells")

    def bind(self, primitives: Sequence[str]) -> None:
        """Called once the supernet is built, with the primitive names of its alpha columns."""
        self.primitives = tuple(primitives)

    def network_options(self) -> dict[str, Any]:
        """Options of the supernet's construction (PC-DARTS: ``partial_channels``, ``edge_normalization``)."""
        return {}

    # --- every forward pass ---------------------------------------------------------------------------
    def mixing_weights(self, alpha: torch.Tensor, mode: Mode) -> torch.Tensor:
        """The (edges x primitives) mixing weights of one cell type from its alphas."""
        return F.softmax(alpha, dim=-1)

    def penalty(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """A term added to the alphas' validation loss (a function of the alphas only), or None."""
        return None

    # --- the schedule -----------------------------------------------------------------------------------
    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called before each search epoch (``epoch`` counts from 0); the schedules read :attr:`progress`."""
        self.epoch, self.epochs = epoch, max(1, epochs)

    @property
    def progress(self) -> float:
        """The share of the search done at the start of this epoch: 0 in the first, (E-1)/E in the last."""
        return self.epoch / self.epochs

    def state_dict(self) -> dict[str, Any]:
        """What a resumed search needs beyond the epoch (which :meth:`start_epoch` gives again)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, on resume."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"


def linear(start: float, end: float, progress: float) -> float:
    """The value a linear schedule from ``start`` to ``end`` has at ``progress`` in [0, 1]."""
    return start + (end - start) * progress


# --- selectors -------------------------------------------------------------------------------------------
@dataclass
class SelectionContext:
    """What a selector may read after a search: the trained supernet, its trainer, the alphas' held-out
    split, the search configuration, the seed, the run's log and folder, and the tracked best genotype."""

    network: Any
    trainer: Any = None
    held_out: Any = None
    search: Any = None
    seed: int = 0
    log: Any = None
    run_dir: Any = None
    best: Any = None


@dataclass(frozen=True)
class Selector:
    """A named way to choose the genotype: ``select(context) -> Genotype``. ``supernet_scoring``: it needs
    a classifier's or regressor's supernet to score (not a language model's)."""

    name: str
    select: Callable[[SelectionContext], Any]
    description: str = ""
    supernet_scoring: bool = False


# --- the contract check ----------------------------------------------------------------------------------
def check_contract(strategy_class: type, origin: str = "") -> None:
    """Fail with the plugin's name when a strategy class breaks the contract: mixing weights of the wrong
    shape, not finite, or not differentiable in the alphas, in any mode; a penalty that is not a finite
    scalar; options without defaults that cannot be built."""
    where = f"strategy {getattr(strategy_class, 'name', strategy_class)!r}" + (f" of plugin {origin}" if origin else "")
    if not (isinstance(strategy_class, type) and issubclass(strategy_class, Strategy)):
        raise StrategyError(f"{where}: expected a subclass of darts.strategy.Strategy, got {strategy_class!r}")
    if not strategy_class.name or not isinstance(strategy_class.name, str):
        raise StrategyError(f"{where}: a strategy needs a non-empty string ``name``")
    try:
        strategy = strategy_class()
    except (ValidationError, TypeError) as error:
        raise StrategyError(f"{where}: its options need defaults so that it can be checked: {error}") from error
    primitives = ("none", "skip_connect", "max_pool_3", "conv_3", "identity")
    strategy.bind(primitives)
    alpha = (1e-3 * torch.randn(3, len(primitives), generator=torch.Generator().manual_seed(0))).requires_grad_()
    for epoch in (0, 1):
        strategy.start_epoch(epoch, 2)
        for mode in MODES:
            with _fork_rng():
                try:
                    weights = strategy.mixing_weights(alpha, mode)  # type: ignore[arg-type]
                except Exception as error:  # noqa: BLE001 - a plugin may raise anything
                    raise StrategyError(f"{where}: mixing_weights failed in mode {mode!r}: "
                                        f"{type(error).__name__}: {error}") from error
            if not isinstance(weights, torch.Tensor) or weights.shape != alpha.shape:
                shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
                raise StrategyError(f"{where}: mixing_weights gave {shape} in mode {mode!r}; expected the alphas' "
                                    f"shape {tuple(alpha.shape)} (edges x primitives)")
            if not bool(torch.isfinite(weights).all()):
                raise StrategyError(f"{where}: mixing_weights are not finite in mode {mode!r}")
            if mode != "derive" and not weights.requires_grad:
                raise StrategyError(f"{where}: mixing_weights in mode {mode!r} do not depend on the alphas "
                                    "(no gradient would reach them)")
        penalty = strategy.penalty({"normal": alpha})
        if penalty is not None and (not isinstance(penalty, torch.Tensor) or penalty.numel() != 1
                                    or not bool(torch.isfinite(penalty).all())):
            raise StrategyError(f"{where}: penalty must be None or a finite scalar tensor, got {penalty!r:.80}")


@contextlib.contextmanager
def _fork_rng() -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def normalised(weights: torch.Tensor) -> torch.Tensor:
    """Rows scaled to sum to 1 (for diagnostics of strategies whose weights are not a distribution)."""
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
