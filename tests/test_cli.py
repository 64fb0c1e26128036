"""The command line, run as a user runs it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from darts.cli import build_parser, main


@pytest.mark.slow
def test_quickstart_search_train_evaluate_and_plot(tmp_path, capsys):
    shrink = ["--data.samples", "96", "--data.test_samples", "48", "--data.length", "16", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--train.epochs", "1", "--search.batch_size", "16", "--train.batch_size", "16"]
    assert main(["quickstart", "--runs", str(tmp_path), "--quiet", *shrink]) == 0
    search_run, train_run = sorted(tmp_path.iterdir())
    assert search_run.name.startswith("search-motifs") and train_run.name.startswith("train-motifs")
    results = json.loads((train_run / "results.json").read_text())
    assert 0 <= results["test"]["test_accuracy"] <= 1 and "majority_accuracy" in results["baseline"]
    capsys.readouterr()
    assert main(["evaluate", str(train_run)]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    assert main(["genotype", "show", str(search_run / "genotype.json")]) == 0
    assert "normal cell" in capsys.readouterr().out
    assert main(["genotype", "plot", str(search_run)]) == 2  # the search drew them: never overwritten
    assert "genotype.png exists; refusing to overwrite" in capsys.readouterr().err
    (search_run / "genotype.png").unlink()
    (search_run / "alphas.png").unlink()
    assert main(["genotype", "plot", str(search_run)]) == 0
    assert (search_run / "genotype.png").exists() and (search_run / "alphas.png").exists()
    assert main(["genotype", "plot", "DARTS_RNN_V2", "--out", str(tmp_path / "pictures")]) == 0
    assert (tmp_path / "pictures" / "DARTS_RNN_V2.png").read_bytes().startswith(b"\x89PNG")
    assert main(["search", "--resume", str(search_run)]) == 2
    assert "finished already" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["search", "motifs-quick", "--search.epoch", "3"], "did you mean 'search.epochs'?"),
    (["search", "motifs-quick", "--search.epochs"], "needs a value"),
    (["search"], "give a CONFIG"),
    (["train", "motifs-quick"], "train needs --genotype"),
    (["search", "--resume", "somewhere", "motifs-quick"], "give no CONFIG or overrides"),
    (["summary", "nowhere.yaml"], "is neither a file nor a preset"),
    (["evaluate", "nowhere"], "has no run.json"),
])
def test_bad_command_lines_exit_2_with_a_named_error(arguments, message, capsys):
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


def test_summary_gives_parameters_and_multiply_adds(capsys):
    assert main(["summary", "digits-quick", "--genotype", "DARTS_V2", "--train.channels", "36", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["network"] == "discrete network" and figures["channels"] == 36
    assert figures["parameters"] > 0 and figures["multiply_adds"] > 0
    assert figures["auxiliary_parameters"] > 0  # digits-quick trains with an auxiliary head, counted apart


def test_errors_are_short_and_named(capsys):
    assert main(["genotype", "show", "DARTS_V3"]) == 2
    assert "did you mean 'DARTS_V2'" in capsys.readouterr().err


def _parsers(parser=None, path=()):
    """Every (command path, parser) of the CLI."""
    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


@pytest.mark.parametrize("path", [path for path, _ in _parsers()], ids=lambda p: " ".join(p) or "darts")
def test_help_documents_every_option(path, capsys):
    parser = dict(_parsers())[path]
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        if action.option_strings or action.dest not in ("command", "genotype_command"):
            assert action.help, f"{' '.join(path)}: {action.dest} has no help"
            assert (action.option_strings or [action.metavar])[0] in text


@pytest.mark.slow
def test_config_commands_list_every_configuration_key():
    text = subprocess.run([sys.executable, "-m", "darts", "search", "--help"], capture_output=True, text=True,
                          check=True).stdout
    for key in ("--search.epochs", "--search.order", "--model.primitives", "--train.valid_fraction", "--seed",
                "motifs-quick", "keywords-full"):
        assert key in text


def test_plugins_json_is_machine_readable(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["family"], r["primitive"]): r for r in data["primitives"]}
    assert rows["conv2d", "sep_conv_3"]["aliases"] == ["sep_conv_3x3"]
    assert rows["recurrent", "tanh"]["distribution"] == "darts-nas"
    assert "DARTS_V2" in data["genotypes"]


def test_version_and_bare_darts_print_and_exit_0(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("darts 0.")
    assert main([]) == 0
    assert "usage: darts" in capsys.readouterr().out


def test_piped_plugin_table_is_not_truncated(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "version" in out and "…" not in out


@pytest.mark.slow
def test_quiet_training_prints_its_result_line_once_and_results_are_strict_json(tmp_path, capsys):
    from darts.io import atomic_write_json

    assert main(["train", "digits-quick", "--genotype", "DARTS_V2", "--train.epochs", "1", "--train.channels", "4",
                 "--train.layers", "2", "--runs", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("test: loss ") == 1 and "majority class" in out and "test_accuracy" not in out
    atomic_write_json(tmp_path / "nan.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert (tmp_path / "nan.json").read_text().split() == ['{', '"a":', 'null,', '"b":', '[', 'null,', '1.0', ']', '}']
