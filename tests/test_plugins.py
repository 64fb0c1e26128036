"""Plugin loading, registration through the one registry, and the errors users meet."""

from __future__ import annotations

import shutil
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from torch import nn

import darts
from darts import DuplicateRegistrationError, Primitive, UnknownNameError, hookimpl
from darts.plugins import (DISABLE_AUTOLOAD_ENV, PLUGINS_ENV, PluginLoadWarning, create_plugin_manager,
                           isolated_plugins, register_primitive)

PLUGIN_PACKAGE = Path(__file__).with_name("plugin_package")


def identity(channels: int, stride: int) -> nn.Module:
    return nn.Identity()


@pytest.fixture
def fresh():
    """A fresh plugin manager for the test, the previous one restored afterwards."""
    with isolated_plugins() as manager:
        yield manager


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """The tiny plugin package, really installed by pip into a folder of its own."""
    root = tmp_path_factory.mktemp("tiny")
    source, target = root / "src", root / "site"
    shutil.copytree(PLUGIN_PACKAGE, source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True)
    return target


def write_fake_distribution(root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """An installed distribution as importlib.metadata sees it: a .dist-info folder and modules."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[darts]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def test_builtin_families_come_through_the_entry_point_group(fresh):
    for family in ("conv1d", "conv2d", "linear", "recurrent"):
        plugin = fresh.registry.family_plugin(family)
        assert plugin.distribution == "darts-nas", plugin
    assert {"conv", "linear", "recurrent"} <= set(fresh.infos)


def test_entry_point_discovery_of_an_installed_package(installed_plugin, monkeypatch):
    monkeypatch.syspath_prepend(str(installed_plugin))
    with isolated_plugins() as manager:
        registry = manager.registry
        assert "tiny_vectors" in registry.family_names
        assert registry.primitive("conv1d", "tiny_swish").name == "tiny_swish"
        plugin = registry.primitive_plugin("conv1d", "tiny_swish")
        assert (plugin.name, plugin.distribution, plugin.version) == ("tiny", "darts-tiny-plugin", "0.3.1")
        # the built-in families are still there, beside the third-party one
        assert {"conv1d", "conv2d", "linear", "recurrent"} <= set(registry.family_names)


@pytest.mark.slow
def test_cli_lists_an_installed_plugin(installed_plugin, monkeypatch):
    env_path = f"{installed_plugin}:{Path(darts.__file__).parents[1]}"
    result = subprocess.run([sys.executable, "-m", "darts", "plugins"], capture_output=True, text=True,
                            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}, check=True)
    assert "tiny_swish" in result.stdout and "darts-tiny-plugin" in result.stdout and "0.3.1" in result.stdout
    assert "sep_conv_3" in result.stdout and "darts-nas" in result.stdout


def test_same_primitive_twice_names_both_plugins(fresh):
    register_primitive("conv1d", "twice", plugin="first_plugin")(identity)
    with pytest.raises(DuplicateRegistrationError) as error:
        register_primitive("conv1d", "twice", plugin="second_plugin")(identity)
    assert "first_plugin" in str(error.value) and "second_plugin" in str(error.value)
    assert "'twice'" in str(error.value) and "conv1d" in str(error.value)
    # the failed registration was rolled back: the registry still builds
    assert fresh.registry.primitive_plugin("conv1d", "twice").name == "first_plugin"


def test_clash_with_a_builtin_primitive_or_alias(fresh):
    with pytest.raises(DuplicateRegistrationError, match=r"conv \(darts-nas .*\) and my_module"):
        register_primitive("conv2d", "sep_conv_3x3", plugin="my_module")(identity)


def test_same_primitive_from_two_entry_point_plugins(tmp_path, monkeypatch):
    plugin = """
        from torch import nn
        from darts import Primitive, hookimpl
        @hookimpl
        def darts_add_primitives():
            return [Primitive("linear", "shared_name", lambda c, s: nn.Identity())]
    """
    write_fake_distribution(tmp_path, "dist-alpha", {"alpha": "alpha_plugin"}, {"alpha_plugin": plugin})
    write_fake_distribution(tmp_path, "dist-beta", {"beta": "beta_plugin"}, {"beta_plugin": plugin})
    monkeypatch.syspath_prepend(str(tmp_path))
    with isolated_plugins() as manager, pytest.raises(DuplicateRegistrationError) as error:
        manager.registry
    assert "alpha (dist-alpha 1.0)" in str(error.value) and "beta (dist-beta 1.0)" in str(error.value)


def test_a_plugin_that_fails_to_import_warns_and_the_others_load(tmp_path, monkeypatch):
    write_fake_distribution(tmp_path, "dist-broken", {"broken": "broken_plugin"},
                            {"broken_plugin": "raise RuntimeError('missing CUDA toolkit')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginLoadWarning) as record:
        manager = create_plugin_manager()
    messages = [str(w.message) for w in record]
    assert any("broken" in m and "dist-broken" in m and "RuntimeError: missing CUDA toolkit" in m for m in messages)
    assert {"conv1d", "conv2d", "linear", "recurrent"} <= set(manager.registry.family_names)


def test_a_plugin_whose_hook_fails_warns(fresh):
    plugin = types.SimpleNamespace()

    @hookimpl
    def darts_add_primitives():
        raise ValueError("bad factory table")

    plugin.darts_add_primitives = darts_add_primitives
    with pytest.warns(PluginLoadWarning, match="faulty.*darts_add_primitives.*bad factory table"):
        darts.register_plugin(plugin, name="faulty")
    assert "conv1d" in fresh.registry.family_names  # the other plugins still count


def test_unknown_family_lists_known_and_suggests(fresh):
    with pytest.raises(UnknownNameError) as error:
        fresh.registry.family("conv3d")
    message = str(error.value)
    assert "conv1d, conv2d, linear, recurrent" in message and re.search("did you mean 'conv[12]d'", message)


def test_unknown_primitive_lists_known_and_suggests(fresh):
    with pytest.raises(UnknownNameError) as error:
        fresh.registry.primitive("conv1d", "sep_conv3")
    message = str(error.value)
    assert "conv1d" in message and "skip_connect" in message and "did you mean 'sep_conv_3'" in message


def test_primitive_for_an_unknown_family_names_the_plugin(fresh):
    with pytest.raises(UnknownNameError, match="family 'lineer'.*my_plugin.*did you mean 'linear'"):
        register_primitive("lineer", "thing", plugin="my_plugin")(identity)


def test_environment_variable_turns_autoload_off(monkeypatch):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    assert create_plugin_manager().registry.family_names == []
    monkeypatch.setenv(PLUGINS_ENV, "darts_plugins.conv")
    assert create_plugin_manager().registry.family_names == ["conv1d", "conv2d"]


def test_in_process_family_and_genotype(fresh):
    family = darts.Family("toy", ("none", "double"), description="a family defined in a notebook")
    darts.register_family(family, plugin="notebook")
    darts.register_primitive("toy", "none", plugin="notebook")(lambda c, s: nn.Identity())
    darts.register_primitive("toy", "double", plugin="notebook")(lambda c, s: nn.Identity())
    assert [p.name for p in fresh.registry.primitives("toy")] == ["none", "double"]
    assert fresh.registry.family_plugin("toy").distribution == "in-process"


def test_register_a_whole_plugin_module(fresh):
    module = types.ModuleType("my_plugin_module")

    @hookimpl
    def darts_add_primitives():
        return [Primitive("recurrent", "softsign", lambda c, s: nn.Softsign())]

    module.darts_add_primitives = darts_add_primitives
    darts.register_plugin(module)
    assert fresh.registry.primitive_plugin("recurrent", "softsign").name == "my_plugin_module"
