"""The plugin manager: loads the ``darts`` entry-point group and in-process registrations into one registry.

Environment variables, in the manner of pytest's:

* ``DARTS_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points at all (not even the built-in families);
* ``DARTS_PLUGINS=mod1,mod2`` imports and registers those modules as plugins, autoload or not.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import sys
import warnings
from importlib.metadata import entry_points
from typing import Callable, Iterator, TypeVar

import pluggy

from darts import hookspecs
from darts.family import Family, Primitive, PrimitiveFactory
from darts.genotype import Genotype, GenotypeError, read_genotype
from darts.hookspecs import hookimpl
from darts.registry import PluginInfo, Registry, RegistryError

ENTRY_POINT_GROUP = "darts"
DISABLE_AUTOLOAD_ENV = "DARTS_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS_ENV = "DARTS_PLUGINS"
IN_PROCESS = "in-process"

F = TypeVar("F", bound=PrimitiveFactory)


class PluginLoadWarning(UserWarning):
    """A plugin could not be imported or failed in a hook; the other plugins still load."""


class InProcessPlugin:
    """A plugin assembled at run time by :func:`register_primitive` and friends, one per module."""

    def __init__(self) -> None:
        self.families: list[Family] = []
        self.primitives: list[Primitive] = []
        self.genotypes: dict = {}
        self.strategies: list = []
        self.selectors: list = []

    @hookimpl
    def darts_add_families(self) -> list[Family]:
        return list(self.families)

    @hookimpl
    def darts_add_primitives(self) -> list[Primitive]:
        return list(self.primitives)

    @hookimpl
    def darts_add_genotypes(self) -> dict:
        return dict(self.genotypes)

    @hookimpl
    def darts_add_strategies(self) -> list:
        return list(self.strategies)

    @hookimpl
    def darts_add_selectors(self) -> list:
        return list(self.selectors)


class PluginManager(pluggy.PluginManager):
    """A pluggy manager for the ``darts`` hooks that also records where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None

    # --- loading -------------------------------------------------------------------------------
    def add_plugin(self, plugin: object, info: PluginInfo) -> bool:
        """Register ``plugin`` under ``info.name``; warn and return False if pluggy rejects it."""
        try:
            self.register(plugin, name=info.name)
        except (pluggy.PluginValidationError, ValueError) as error:
            warnings.warn(f"darts plugin {info} was not registered: {error}", PluginLoadWarning,
                          stacklevel=2)
            return False
        self.infos[info.name] = info
        self._registry = None
        return True

    def remove_plugin(self, name: str) -> None:
        self.unregister(name=name)
        self.infos.pop(name, None)
        self._registry = None

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Import every plugin of the entry-point group; one that fails gives a warning and is skipped."""
        for entry in entry_points(group=group):
            distribution = entry.dist.name if entry.dist is not None else ""
            version = entry.dist.version if entry.dist is not None else ""
            name = entry.name
            if self.has_plugin(name):
                if self.infos[name].distribution == distribution:
                    continue  # the same distribution seen twice on sys.path
                name = f"{entry.name}@{distribution}"
            info = PluginInfo(name, distribution, version)
            try:
                plugin = entry.load()
            except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure of a plugin's import
                warnings.warn(
                    f"darts plugin {info} ({entry.value}) failed to import and was skipped: "
                    f"{type(error).__name__}: {error}", PluginLoadWarning, stacklevel=2)
                continue
            self.add_plugin(plugin, info)

    def load_modules(self, names: list[str]) -> None:
        """Import modules by name and register each as a plugin (for ``DARTS_PLUGINS``)."""
        for module_name in names:
            info = PluginInfo(module_name, "DARTS_PLUGINS", "")
            if self.has_plugin(module_name):
                continue
            try:
                module = importlib.import_module(module_name)
            except (Exception, SystemExit) as error:  # noqa: BLE001
                warnings.warn(f"darts plugin {module_name!r} named in {PLUGINS_ENV} failed to import "
                              f"and was skipped: {type(error).__name__}: {error}", PluginLoadWarning,
                              stacklevel=2)
                continue
            self.add_plugin(module, info)

    # --- the registry ----------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        """The registry built from every registered plugin (cached until plugins change)."""
        if self._registry is None:
            self._registry = self.build_registry()
        return self._registry

    def _results(self, hook_name: str) -> Iterator[tuple[object, PluginInfo]]:
        caller = getattr(self.hook, hook_name)
        for impl in caller.get_hookimpls():  # in registration order
            info = self.infos.get(impl.plugin_name, PluginInfo(impl.plugin_name))
            try:
                result = impl.function()
            except (Exception, SystemExit) as error:  # noqa: BLE001
                warnings.warn(f"darts plugin {info} failed in {hook_name}: {type(error).__name__}: "
                              f"{error}", PluginLoadWarning, stacklevel=3)
                continue
            if result is not None:
                yield result, info

    def _typed(self, hook_name: str, kind: type, mapping: bool = False) -> Iterator[tuple[object, PluginInfo]]:
        """Each item a hook returned that is a ``kind`` (a list of them, or a dict of them by name);
        anything else gives a PluginLoadWarning naming the plugin and is skipped."""
        expected = f"a dict of names to {kind.__name__}" if mapping else f"a list of {kind.__name__}"
        for result, info in self._results(hook_name):
            container = dict if mapping else (list, tuple)
            if not isinstance(result, container):
                warnings.warn(f"darts plugin {info}: {hook_name} returned a {type(result).__name__}; expected "
                              f"{expected}, so it was ignored", PluginLoadWarning, stacklevel=3)
                continue
            for item in result.items() if mapping else result:
                value = item[1] if mapping else item
                if isinstance(value, kind) and (not mapping or isinstance(item[0], str)):
                    yield item, info
                else:
                    warnings.warn(f"darts plugin {info}: {hook_name} gave {value!r:.80} ({type(value).__name__}); "
                                  f"expected {expected}, so that item was ignored", PluginLoadWarning,
                                  stacklevel=3)

    def build_registry(self) -> Registry:
        from darts.strategy import Selector, Strategy

        registry = Registry()
        for family, info in self._typed("darts_add_families", Family):
            registry.add_family(family, info)
        for primitive, info in self._typed("darts_add_primitives", Primitive):
            registry.add_primitive(primitive, info)
        registry.finish()
        for (name, genotype), info in self._typed("darts_add_genotypes", Genotype, mapping=True):
            try:
                genotype.validate(registry, source=f"genotype {name} of plugin {info}")
            except (GenotypeError, RegistryError) as error:
                warnings.warn(f"darts plugin {info}: genotype {name!r} was ignored: {error}", PluginLoadWarning,
                              stacklevel=2)
                continue
            registry.add_genotype(name, genotype, info)
        for strategy, info in self._typed("darts_add_strategies", type):
            if not issubclass(strategy, Strategy) or not isinstance(getattr(strategy, "name", None), str) \
                    or not strategy.name:
                warnings.warn(f"darts plugin {info}: darts_add_strategies gave {strategy!r}, which is not a named "
                              "subclass of darts.strategy.Strategy, so it was ignored", PluginLoadWarning, stacklevel=2)
                continue
            registry.add_strategy(strategy, info)
        for selector, info in self._typed("darts_add_selectors", Selector):
            registry.add_selector(selector, info)
        return registry

    def check_pending(self) -> None:
        """pluggy's check, as warnings naming the plugin: a ``@hookimpl`` that matches no darts hook (a
        misspelt hook name) would otherwise be silently ignored."""
        known = sorted(name for name, caller in vars(self.hook).items() if getattr(caller, "spec", None))
        for name, caller in list(vars(self.hook).items()):
            if not hasattr(caller, "get_hookimpls") or caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                info = self.infos.get(impl.plugin_name, PluginInfo(impl.plugin_name))
                close = difflib.get_close_matches(name, known, n=1)
                warnings.warn(f"darts plugin {info} implements {name}, which is no darts hook"
                              + (f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"),
                              PluginLoadWarning, stacklevel=2)

    # --- in-process registration ------------------------------------------------------------------
    def in_process_plugin(self, module: str) -> InProcessPlugin:
        """The in-process plugin of ``module``, created and registered on first use."""
        plugin = self.get_plugin(module)
        if plugin is None:
            plugin = InProcessPlugin()
            self.add_plugin(plugin, PluginInfo(module, IN_PROCESS, ""))
        if not isinstance(plugin, InProcessPlugin):
            raise ValueError(f"a plugin named {module!r} is already registered and is not in-process")
        return plugin

    def rebuild(self, undo: Callable[[], None]) -> None:
        """Rebuild the registry now, so that a clash surfaces here; on failure call ``undo`` and re-raise."""
        self._registry = None
        try:
            self.registry
        except Exception:
            undo()
            self._registry = None
            raise

    def add_in_process(self, module: str, attribute: str, item: object, key: str | None = None) -> None:
        """Add ``item`` to an in-process plugin and rebuild the registry; undo it if that fails."""
        container = getattr(self.in_process_plugin(module), attribute)
        if key is None:
            container.append(item)
            self.rebuild(lambda: container.remove(item))
        else:
            container[key] = item
            self.rebuild(lambda: container.pop(key))


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def create_plugin_manager() -> PluginManager:
    """A new manager loaded the standard way: entry points (unless disabled), then ``DARTS_PLUGINS``."""
    manager = PluginManager()
    if not _autoload_disabled():
        manager.load_entry_points()
    extra = [name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]
    manager.load_modules(extra)
    manager.check_pending()
    return manager


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _manager
    if _manager is None:
        _manager = create_plugin_manager()
    return _manager


def get_registry() -> Registry:
    """The process-wide registry of families, primitives and named genotypes."""
    return get_plugin_manager().registry


def resolve_registry(registry: Registry | None = None) -> Registry:
    """``registry`` if given, else the process-wide one."""
    return registry if registry is not None else get_registry()


def load_genotype(source: str | os.PathLike | Genotype, registry: Registry | None = None) -> Genotype:
    """A validated genotype from a JSON file path, a registered name (``DARTS_V2``) or a Genotype, checked
    against ``registry`` (by default the process-wide one)."""
    return read_genotype(source, resolve_registry(registry))


@contextlib.contextmanager
def isolated_plugins(manager: PluginManager | None = None) -> Iterator[PluginManager]:
    """Use a fresh (or the given) plugin manager inside the block, then restore the previous one."""
    global _manager
    previous = _manager
    _manager = manager if manager is not None else create_plugin_manager()
    try:
        yield _manager
    finally:
        _manager = previous


def _caller_module(depth: int = 2) -> str:
    return sys._getframe(depth).f_globals.get("__name__", "__main__")


def register_primitive(family: str, name: str | None = None, *, aliases: tuple[str, ...] = (),
                       description: str = "", plugin: str | None = None) -> Callable[[F], F]:
    """Decorator: register ``factory(channels, stride)`` as a primitive of ``family``, in-process.

    The primitive goes through the same registry as entry-point plugins: a name clash is an error
    naming both plugins, raised here. ``plugin`` defaults to the factory's module.
    """

    def decorate(factory: F) -> F:
        primitive = Primitive(family, name or factory.__name__, factory, tuple(aliases),
                              description or (factory.__doc__ or "").strip().split("\n")[0])
        get_plugin_manager().add_in_process(plugin or factory.__module__, "primitives", primitive)
        return factory

    return decorate


def register_family(family: Family, *, plugin: str | None = None) -> Family:
    """Register a family in-process (its primitives can follow with :func:`register_primitive`)."""
    get_plugin_manager().add_in_process(plugin or _caller_module(), "families", family)
    return family


def register_genotype(name: str, genotype: object, *, plugin: str | None = None) -> None:
    """Register a named genotype in-process, loadable by name like the published ones."""
    get_plugin_manager().add_in_process(plugin or _caller_module(), "genotypes", genotype, key=name)


def register_strategy(strategy: type, *, plugin: str | None = None) -> type:
    """Register a :class:`darts.strategy.Strategy` subclass in-process (usable as a class decorator)."""
    get_plugin_manager().add_in_process(plugin or strategy.__module__, "strategies", strategy)
    return strategy


def register_selector(selector: object, *, plugin: str | None = None) -> None:
    """Register a :class:`darts.strategy.Selector` in-process."""
    get_plugin_manager().add_in_process(plugin or _caller_module(), "selectors", selector)


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a whole plugin object or module in-process, as if it came from an entry point."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    manager = get_plugin_manager()
    if manager.add_plugin(plugin, PluginInfo(name, IN_PROCESS, "")):
        manager.rebuild(lambda: manager.remove_plugin(name))
