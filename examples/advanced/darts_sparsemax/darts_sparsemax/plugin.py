"""The plugin: one hook, found by darts through the `darts` entry point in setup.py."""

from darts import hookimpl
from darts_sparsemax.strategy import Sparsemax


@hookimpl
def darts_add_strategies():
    return [Sparsemax]
