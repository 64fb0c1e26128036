"""darts-sparsemax: a search strategy for darts, shipped as a plugin (the `darts` entry point)."""

from setuptools import setup

setup(
    name="darts-sparsemax",
    version="1.0.0",
    description="Sparsemax mixing weights for darts searches: exact zeros instead of a softmax's long tail",
    packages=["darts_sparsemax"],
    install_requires=["darts-nas"],
    # the same one line as a primitive plugin: the group "darts", a name, and the module with the hooks
    entry_points={"darts": ["sparsemax = darts_sparsemax.plugin"]},
)
