"""A tiny third-party darts plugin, installed by the tests to check entry-point discovery."""

from setuptools import setup

setup(
    name="darts-tiny-plugin",
    version="0.3.1",
    packages=["darts_tiny_plugin"],
    entry_points={"darts": ["tiny = darts_tiny_plugin"]},
)
