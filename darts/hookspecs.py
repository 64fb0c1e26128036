"""Hook specifications of darts plugins: every hook a plugin may implement, in one module.

A plugin is a module (or any object) with functions marked ``@hookimpl``, published through the
``darts`` entry-point group (as pytest uses ``pytest11``) or registered in-process with
:func:`darts.register_plugin`. The built-in families in ``darts_plugins`` use the same path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import pluggy

if TYPE_CHECKING:
    from darts.family import Family, Primitive
    from darts.genotype import Genotype
    from darts.strategy import Selector, Strategy

PROJECT_NAME = "darts"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def darts_add_families() -> Sequence["Family"]:
    """Return the families this plugin defines (their glue: preprocessing, reduction, stem, pooling)."""


@hookspec
def darts_add_primitives() -> Sequence["Primitive"]:
    """Return the primitives this plugin adds, to its own families or to another plugin's."""


@hookspec
def darts_add_genotypes() -> Mapping[str, "Genotype"]:
    """Return named genotypes (for example published ones) that users can load by name."""


@hookspec
def darts_add_strategies() -> Sequence[type["Strategy"]]:
    """Return the search strategies this plugin defines: subclasses of :class:`darts.strategy.Strategy`."""


@hookspec
def darts_add_selectors() -> Sequence["Selector"]:
    """Return the genotype selectors this plugin defines (:class:`darts.strategy.Selector`)."""
