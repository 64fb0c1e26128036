"""The registry: every family, primitive and named genotype, with the plugin each came from."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from darts.family import Family, Primitive

if TYPE_CHECKING:
    from darts.genotype import Genotype
    from darts.strategy import Selector, Strategy


class RegistryError(Exception):
    """Base class of registry errors."""


class DuplicateRegistrationError(RegistryError):
    """Two plugins registered the same name."""


class UnknownNameError(RegistryError, KeyError):
    """A family, primitive or genotype name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin came from: its registered name, distribution and version."""

    name: str
    distribution: str = ""
    version: str = ""

    def __str__(self) -> str:
        origin = " ".join(part for part in (self.distribution, self.version) if part)
        return f"{self.name} ({origin})" if origin else self.name


def unknown_name_message(kind: str, name: str, known: Iterable[str], where: str = "",
                         aliases: dict[str, str] | None = None) -> str:
    """An error message that lists the known names and suggests the closest (an alias suggests its name)."""
    known = sorted(set(known))
    aliases = aliases or {}
    message = f"unknown {kind} {name!r}{where}; known: {', '.join(known) if known else '(none)'}"
    close = difflib.get_close_matches(name, [*known, *aliases], n=1, cutoff=0.5)
    if close:
        message += f"; did you mean {aliases.get(close[0], close[0])!r}?"
    return message


@dataclass(frozen=True)
class Registered:
    """A registered object and the plugin that registered it."""

    value: object
    plugin: PluginInfo


class Registry:
    """Families, their primitives and named genotypes, each tagged with its plugin."""

    def __init__(self) -> None:
        self._families: dict[str, Registered] = {}
        self._primitives: dict[str, dict[str, Registered]] = {}
        self._aliases: dict[str, dict[str, str]] = {}
        self._genotypes: dict[str, Registered] = {}
        self._strategies: dict[str, Registered] = {}
        self._strategy_aliases: dict[str, str] = {}
        self._checked: set[str] = set()
        self._selectors: dict[str, Registered] = {}
        self._pending: list[tuple[Primitive, PluginInfo]] = []

    # --- adding ------------------------------------------------------------------------------
    def add_family(self, family: Family, plugin: PluginInfo) -> None:
        if family.name in self._families:
            other = self._families[family.name].plugin
            raise DuplicateRegistrationError(
                f"family {family.name!r} is registered by two plugins: {other} and {plugin}"
            )
        self._families[family.name] = Registered(family, plugin)
        self._primitives.setdefault(family.name, {})
        self._aliases.setdefault(family.name, {})

    def add_primitive(self, primitive: Primitive, plugin: PluginInfo) -> None:
        """Add a primitive; its family may be registered later (see :meth:`finish`)."""
        self._pending.append((primitive, plugin))

    def add_genotype(self, name: str, genotype: "Genotype", plugin: PluginInfo) -> None:
        if name in self._genotypes:
            other = self._genotypes[name].plugin
            raise DuplicateRegistrationError(
                f"genotype {name!r} is registered by two plugins: {other} and {plugin}"
            )
        self._genotypes[name] = Registered(genotype, plugin)

    def add_strategy(self, strategy: "type[Strategy]", plugin: PluginInfo) -> None:
        """Add a strategy class; its contract is checked when it is first used (:meth:`strategy`)."""
        for name in (strategy.name, *strategy.aliases):
            holder = self._strategies.get(name) or self._strategies.get(self._strategy_aliases.get(name, ""))
            if holder is not None:
                raise DuplicateRegistrationError(f"strategy {name!r} is registered by two plugins: {holder.plugin} "
                                                 f"and {plugin}")
        self._strategies[strategy.name] = Registered(strategy, plugin)
        self._strategy_aliases.update({alias: strategy.name for alias in strategy.aliases})

    def add_selector(self, selector: "Selector", plugin: PluginInfo) -> None:
        if selector.name in self._selectors:
            raise DuplicateRegistrationError(f"selector {selector.name!r} is registered by two plugins: "
                                             f"{self._selectors[selector.name].plugin} and {plugin}")
        self._selectors[selector.name] = Registered(selector, plugin)

    def finish(self) -> "Registry":
        """Attach the primitives to their families, checking for unknown families and clashes."""
        pending, self._pending = self._pending, []
        for primitive, plugin in pending:
            if primitive.family not in self._families:
                raise UnknownNameError(
                    unknown_name_message("family", primitive.family, self._families,
                                         f" (primitive {primitive.name!r} of plugin {plugin})")
                )
            names = self._primitives[primitive.family]
            aliases = self._aliases[primitive.family]
            for name in (primitive.name, *primitive.aliases):
                holder = names.get(name) or names.get(aliases.get(name, ""))
                if holder is not None:
                    raise DuplicateRegistrationError(
                        f"primitive {name!r} of family {primitive.family!r} is registered by two "
                        f"plugins: {holder.plugin} and {plugin}"
                    )
            names[primitive.name] = Registered(primitive, plugin)
            aliases.update({alias: primitive.name for alias in primitive.aliases})
        return self

    # --- looking up ----------------------------------------------------------------------------
    @property
    def family_names(self) -> list[str]:
        return sorted(self._families)

    def family(self, name: str) -> Family:
        if name not in self._families:
            raise UnknownNameError(unknown_name_message("family", name, self._families))
        return self._families[name].value  # type: ignore[return-value]

    def family_plugin(self, name: str) -> PluginInfo:
        self.family(name)
        return self._families[name].plugin

    def canonical_name(self, family: str, name: str) -> str:
        """The registered name of a primitive given its name or an alias."""
        self.family(family)
        if name in self._primitives[family]:
            return name
        if name in self._aliases[family]:
            return self._aliases[family][name]
        raise UnknownNameError(unknown_name_message("primitive", name, self._primitives[family],
                                                    f" in family {family!r}", self._aliases[family]))

    def primitive(self, family: str, name: str) -> Primitive:
        return self._primitives[family][self.canonical_name(family, name)].value  # type: ignore[return-value]

    def primitive_plugin(self, family: str, name: str) -> PluginInfo:
        return self._primitives[family][self.canonical_name(family, name)].plugin

    def primitives(self, family: str) -> list[Primitive]:
        """Every primitive of ``family``, in registration order."""
        self.family(family)
        return [entry.value for entry in self._primitives[family].values()]  # type: ignore[misc]

    def resolve(self, family: str, names: Iterable[str] | None = None) -> list[Primitive]:
        """The primitives named (aliases allowed), or the family's default set when ``names`` is None."""
        fam = self.family(family)
        if names is None:
            names = fam.default_primitives or [p.name for p in self.primitives(family)]
        resolved = [self.primitive(family, name) for name in names]
        seen: set[str] = set()
        for primitive in resolved:
            if primitive.name in seen:
                raise ValueError(f"primitive {primitive.name!r} is listed twice for family {family!r}")
            seen.add(primitive.name)
        return resolved

    def genotype(self, name: str) -> "Genotype":
        if name not in self._genotypes:
            raise UnknownNameError(unknown_name_message("genotype", name, self._genotypes))
        return self._genotypes[name].value  # type: ignore[return-value]

    @property
    def genotype_names(self) -> list[str]:
        return sorted(self._genotypes)

    @property
    def strategy_names(self) -> list[str]:
        return sorted(self._strategies)

    def strategy(self, name: str) -> "type[Strategy]":
        """The strategy class of ``name`` (or an alias), its contract checked on first use: a plugin's strategy
        that breaks it fails here, with the plugin's name."""
        from darts.strategy import check_contract

        name = self._strategy_aliases.get(name, name)
        if name not in self._strategies:
            raise UnknownNameError(unknown_name_message("strategy", name, self._strategies,
                                                        aliases=self._strategy_aliases))
        entry = self._strategies[name]
        if name not in self._checked:
            check_contract(entry.value, str(entry.plugin))
            self._checked.add(name)
        return entry.value  # type: ignore[return-value]

    def strategy_plugin(self, name: str) -> PluginInfo:
        return self._strategies[self._strategy_aliases.get(name, name)].plugin

    def strategy_description(self, name: str) -> str:
        """The strategy's one-line description, without checking its contract (for listings)."""
        return self._strategies[self._strategy_aliases.get(name, name)].value.description  # type: ignore[union-attr]

    def strategy_aliases(self, name: str) -> list[str]:
        return sorted(alias for alias, target in self._strategy_aliases.items() if target == name)

    @property
    def selector_names(self) -> list[str]:
        return sorted(self._selectors)

    def selector(self, name: str) -> "Selector":
        if name not in self._selectors:
            raise UnknownNameError(unknown_name_message("selector", name, self._selectors))
        return self._selectors[name].value  # type: ignore[return-value]

    def selector_plugin(self, name: str) -> PluginInfo:
        self.selector(name)
        return self._selectors[name].plugin

    def __iter__(self) -> Iterator[tuple[Family, Primitive, PluginInfo]]:
        """(family, primitive, plugin) for every registered primitive."""
        for family_name in self.family_names:
            family = self.family(family_name)
            for entry in self._primitives[family_name].values():
                yield family, entry.value, entry.plugin  # type: ignore[misc]
