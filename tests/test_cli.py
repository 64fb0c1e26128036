"""The command line, run as a user runs it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from darts.cli import build_parser, main


def test_quickstart_writes_a_new_run_directory_each_time(tmp_path, capsys):
    options = ["quickstart", "--runs", str(tmp_path), "--epochs", "1", "--train-epochs", "1", "--samples", "64",
               "--test-samples", "32", "--length", "16", "--channels", "4", "--batch-size", "16"]
    assert main(options) == 0
    assert main(options + ["--order", "first"]) == 0
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 2
    for run in runs:
        assert {"config.json", "metrics.csv", "genotypes.jsonl", "genotype.json", "results.json"} <= \
            {p.name for p in run.iterdir()}
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        assert len(rows) == 1 and float(rows[0]["val_loss"]) > 0
        results = json.loads((run / "results.json").read_text())
        assert 0 <= results["test_accuracy"] <= 1
    assert main(["genotype", "show", str(runs[0] / "genotype.json")]) == 0
    assert "normal cell" in capsys.readouterr().out


def test_errors_are_short_and_named(capsys):
    assert main(["genotype", "show", "DARTS_V3"]) == 2
    assert "did you mean 'DARTS_V2'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["plugins"], ["genotype"], ["genotype", "show"], ["quickstart"]])
def test_help_documents_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: darts" in text


def test_quickstart_help_lists_each_option():
    text = subprocess.run([sys.executable, "-m", "darts", "quickstart", "--help"], capture_output=True, text=True,
                          check=True).stdout
    for option in ("--epochs", "--train-epochs", "--order", "--samples", "--seed", "--runs"):
        assert option in text


def test_plugins_json_is_machine_readable(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["family"], r["primitive"]): r for r in data["primitives"]}
    assert rows["conv2d", "sep_conv_3"]["aliases"] == ["sep_conv_3x3"]
    assert rows["recurrent", "tanh"]["distribution"] == "darts-nas"
    assert "DARTS_V2" in data["genotypes"]
