"""Configuration: presets, dotted overrides, the typed schema and its error messages."""

from __future__ import annotations

import pytest

from darts.config import ConfigError, load_config, parse_overrides, preset_names
from darts.registry import UnknownNameError
from darts.tasks import get_task


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_validates_and_names_a_built_in_task(preset):
    from darts.plugins import get_registry

    config = load_config(preset)
    get_task(config.task)
    assert config.model.family in get_registry().family_names


def test_each_built_in_task_has_a_quick_and_a_full_preset():
    from darts.tasks import task_names

    modes: dict[str, set[str]] = {}
    for name in preset_names():
        modes.setdefault(load_config(name).task, set()).add(name.rsplit("-", 1)[1])
    built_in = [t for t in task_names() if type(get_task(t)).__module__.startswith("darts.")]  # not examples'
    assert {task: modes.get(task) for task in built_in} == {task: {"quick", "full"} for task in built_in}


def test_dotted_overrides_are_typed_by_the_schema():
    config = load_config("motifs-quick", ["--search.epochs", "3",
                                          "--search.warmup_epochs", "0", "--search.lr=1e-2", "--model.primitives",
                                          "[skip_connect, sep_conv_3]", "--train.channels", "null", "--seed", "7"])
    assert config.search.epochs == 3 and isinstance(config.search.epochs, int)
    assert config.search.lr == 0.01
    assert config.model.primitives == ["skip_connect", "sep_conv_3"]
    assert config.train.channels is None and config.seed == 7


@pytest.mark.parametrize("override, expected", [
    (["--search.epoch", "3"], "unknown key 'search.epoch'; did you mean 'search.epochs'?"),
    (["--serch.epochs", "3"], "unknown key 'serch'; did you mean 'search'?"),
    (["--data.sample", "10"], "unknown key 'data.sample'; did you mean 'data.samples'?"),
    (["--search.epochs", "three"], "search.epochs: Input should be a valid integer"),
    (["--search.order", "third"], "search.order: Input should be 'first', 'second' or 'exact'"),
    (["--search.split", "1.5"], "search.split: Input should be less than 1"),
])
def test_a_bad_key_or_value_is_an_error_that_names_it(override, expected):
    with pytest.raises(ConfigError) as error:
        load_config("motifs-quick", override)
    assert expected in str(error.value)


def test_unknown_task_and_family_suggest_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'motifs'"):
        load_config({"task": "motif"})
    with pytest.raises(UnknownNameError, match="did you mean 'conv1d'"):
        load_config({"task": "motifs", "model": {"family": "conv_1d"}})
    with pytest.raises(UnknownNameError, match="did you mean 'sep_conv_3'"):
        load_config({"task": "motifs", "model": {"primitives": ["sep_conv3", "max_pool_3"]}})


@pytest.mark.parametrize("text, expected", [
    ("", "is empty"), ("- a\n- b\n", "a mapping"), ("task: [motifs\n", "not valid YAML"),
    ("seed: 1\n", "missing key 'task'"),
])
def test_a_bad_file_is_an_error_naming_it(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(path)
    assert "bad.yaml" in str(error.value)


def test_a_missing_config_suggests_a_preset():
    with pytest.raises(ConfigError, match="did you mean 'motifs-quick'"):
        load_config("motifs-quik")


@pytest.mark.parametrize("arguments, expected", [
    (["search.epochs", "3"], "overrides look like --search.epochs 3"),
    (["--search.epochs"], "needs a value"),
])
def test_malformed_overrides(arguments, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_overrides(arguments)


def test_the_resolved_config_round_trips(tmp_path):
    config = load_config("tabular-quick", ["--search.epochs", "2", "--search.warmup_epochs", "0"])
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    again = load_config(path)
    assert again == config and again.data["features"] == 32  # task defaults are filled in
