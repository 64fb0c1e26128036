"""darts: differentiable architecture search (DARTS) with plugin-defined primitive families."""

from darts.architecture import Architecture, Hypergradient
from darts.family import Family, Primitive, check_primitive
from darts.genotype import CellGenotype, Genotype, GenotypeError, derive_cell
from darts.hookspecs import hookimpl
from darts.plugins import (PluginLoadWarning, get_plugin_manager, get_registry, load_genotype, register_family,
                           register_genotype, register_plugin, register_primitive, register_selector,
                           register_strategy)
from darts.registry import DuplicateRegistrationError, RegistryError, UnknownNameError
from darts.strategy import SearchSpaceInfo, Selector, SelectionContext, Strategy, StrategyError, StrategyOptions
from darts.search_space import (Network, RecurrentNetwork, RecurrentSearchNetwork, SearchNetwork,
                                Supernet, Zero)

__version__ = "0.1.0"

__all__ = [
    "Architecture", "CellGenotype", "DuplicateRegistrationError", "Family", "Genotype", "GenotypeError",
    "Hypergradient", "Network", "PluginLoadWarning", "Primitive", "RecurrentNetwork", "RecurrentSearchNetwork",
    "RegistryError", "SearchNetwork", "Supernet", "UnknownNameError", "check_primitive", "derive_cell",
    "get_plugin_manager", "get_registry", "hookimpl", "load_genotype", "register_family", "register_genotype",
    "register_plugin", "register_primitive", "register_selector", "register_strategy", "SearchSpaceInfo",
    "SelectionContext", "Selector", "Strategy", "StrategyError", "StrategyOptions", "Zero", "__version__",
]
