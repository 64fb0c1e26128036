"""The plugin: one hook, found by darts through the `darts` entry point in setup.py."""

from darts import Primitive, hookimpl
from darts_gated.primitives import PRIMITIVES


@hookimpl
def darts_add_primitives():
    return [Primitive(family, name, factory, description=description)
            for family, name, factory, description in PRIMITIVES]
