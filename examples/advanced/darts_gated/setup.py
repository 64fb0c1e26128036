"""darts-gated: gated convolutions as darts primitives, shipped as a plugin (the `darts` entry point)."""

from setuptools import setup

setup(
    name="darts-gated",
    version="1.0.0",
    description="Gated and squeeze-excitation convolution primitives for darts (conv1d and conv2d)",
    packages=["darts_gated"],
    install_requires=["darts-nas"],
    # this one line is all darts needs: the group "darts", a name, and the module with the hooks
    entry_points={"darts": ["gated = darts_gated.plugin"]},
)
