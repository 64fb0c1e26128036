"""What a search will run, resolved from its configuration before any data is loaded: the strategy (with its
options checked by its schema, and against the family, primitives and order) and the selector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from darts.config import RunConfig
from darts.plugins import get_registry
from darts.registry import UnknownNameError
from darts.strategy import SearchSpaceInfo, Selector, Strategy, StrategyError

#: the model keys that spell PC-DARTS without naming the strategy (the older configuration)
PC_DARTS_KEYS = ("partial_channels", "edge_normalization")


@dataclass
class SearchPlan:
    """The strategy instance, the selector, and the supernet's construction options."""

    strategy: Strategy
    selector: Selector
    network_options: dict[str, Any]

    def describe(self) -> str:
        options = self.strategy.options.model_dump()
        shown = f" ({', '.join(f'{k} {v}' for k, v in options.items())})" if options else ""
        return f"strategy {self.strategy.name}{shown}, selection {self.selector.name}"


def plan_search(config: RunConfig) -> SearchPlan:
    """Resolve ``search.strategy``, ``search.strategy_options`` and ``search.selection``; raise a clear
    error (before any data is loaded) when one is unknown, takes no such option, or cannot search this space."""
    registry = get_registry()
    s, model = config.search, config.model
    name, options = s.strategy, dict(s.strategy_options)
    legacy = {key: getattr(model, key) for key in PC_DARTS_KEYS
              if getattr(model, key) != type(model).model_fields[key].default}
    strategy_class = _named("search.strategy", registry.strategy, name)
    if legacy and strategy_class.name == "darts":  # model.partial_channels / edge_normalization: PC-DARTS
        strategy_class = registry.strategy("pc-darts")
        options = {"partial_channels": model.partial_channels, "edge_normalization": model.edge_normalization,
                   **options}
    try:
        strategy = strategy_class(options)
    except ValidationError as error:
        raise StrategyError(_options_message(strategy_class, error)) from error
    network_options = {key: getattr(model, key) for key in PC_DARTS_KEYS}
    for key, value in strategy.network_options().items():
        if key in legacy and legacy[key] != value:
            raise StrategyError(f"model.{key} is {legacy[key]!r} but search.strategy {strategy.name} sets it to "
                                f"{value!r}: give it once, as search.strategy_options.{key}")
        network_options[key] = value
    family = registry.family(model.family)
    primitives = tuple(p.name for p in registry.resolve(family.name, model.primitives))
    strategy.check(SearchSpaceInfo(family.name, family.cell, primitives, s.order, family.spatial_dims))
    if s.resource is not None and family.cell != "feedforward":
        raise StrategyError(f"search.resource measures the edges of feedforward cells; family {family.name!r} has "
                            f"{family.cell} cells: remove search.resource")
    selector = _named("search.selection" if s.selection else f"strategy {strategy.name}'s selector", registry.selector,
                      s.selection or strategy.selector)
    return SearchPlan(strategy, selector, network_options)


def _named(key: str, lookup, name: str):
    """``lookup(name)``, its unknown-name error prefixed with the configuration key that gave the name."""
    try:
        return lookup(name)
    except UnknownNameError as error:
        raise StrategyError(f"{key}: {error}") from error


def _options_message(strategy_class: type[Strategy], error: ValidationError) -> str:
    """One line per bad option: unknown ones named with the known ones, bad values with the reason."""
    fields = strategy_class.Options.model_fields
    known = ", ".join(f"{key} (default {field.default!r})" for key, field in fields.items()) or "none"
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(f"search.strategy_options.{key}: strategy {strategy_class.name!r} takes no option "
                            f"{key!r}")
        else:
            problems.append(f"search.strategy_options.{key}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(problems) + f"; the options of {strategy_class.name!r}: {known}"
