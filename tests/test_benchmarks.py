"""The scripts under benchmarks/ run and report their figures: step speed with its ratios, the second-order ratio,
the planted and real-data tables (tiny configurations)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "step_speed.py"


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


@pytest.mark.slow
def test_step_speed_benchmark_writes_figures_and_ratios(tmp_path):
    out = tmp_path / "figures.json"
    result = run_script("--configs", "tiny", "--repeats", "1", "--warmup", "0", "--rounds", "2",
                        "--steps", "plain,fast-pc,ref-second", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["step"] for r in rows] == ["plain", "fast-pc", "ref-second"]
    assert rows[0]["time_ratio_to_plain"] == 1.0 and all(r["seconds"] > 0 and r["peak_rss_gib"] > 0 for r in rows)
    assert all(len(r["times"]) == len(r["cpu_times"]) == 2 for r in rows)  # one per round
    by_step = {r["step"]: r for r in rows}
    assert by_step["fast-pc"]["speedup_over_measured_reference"] == (by_step["ref-second"]["seconds"]
                                                                   / by_step["fast-pc"]["seconds"])
    assert by_step["fast-pc"]["weights"] < by_step["plain"]["weights"]  # the primitives see 1/K of the channels
    assert "speedup_over_measured_reference" not in by_step["plain"]  # ref-plain was not measured
    assert "x plain" in result.stdout and "faster than ref here" in result.stdout
    # an earlier run's figures are never overwritten
    again = run_script("--configs", "tiny", "--steps", "plain", "--out", str(out))
    assert again.returncode != 0 and "exists" in again.stderr and json.loads(out.read_text())["rows"] == rows


@pytest.mark.slow
def test_a_step_that_dies_is_recorded_and_the_others_still_measured(tmp_path, monkeypatch):
    """The exact step of C=16, batch 64 needs more memory than this machine has: the system kills it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("step_speed", SCRIPT)
    step_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step_speed)
    real_run = subprocess.run

    def run(command, **options):
        if command[3:5] == ["tiny", "exact"]:
            return subprocess.CompletedProcess(command, -9, "", "")
        return real_run(command, **options, env={**os.environ, "OMP_NUM_THREADS": "1"})

    monkeypatch.setattr(step_speed.subprocess, "run", run)
    rows = step_speed.main(["--configs", "tiny", "--steps", "plain,exact,fast", "--repeats", "1", "--warmup", "0",
                            "--out", str(tmp_path / "figures.json")])
    assert [r["step"] for r in rows] == ["plain", "exact", "fast"]
    assert rows[1] == {"config": "tiny", "step": "exact", "failed": "killed by the system (out of memory?)"}
    assert rows[2]["time_ratio_to_plain"] > 0
    assert json.loads((tmp_path / "figures.json").read_text())["rows"][1]["failed"]


@pytest.mark.slow
def test_second_order_ratio_takes_turns_and_reports_each():
    result = subprocess.run([sys.executable, str(SCRIPT.parent / "second_order_ratio.py"), "--config", "tiny",
                             "--turns", "2"], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("turn ") == 2 and "ratio of medians" in result.stdout
    ratios = [float(r) for r in result.stdout.rsplit("(", 1)[1].rstrip(")\n").split(", ")]
    assert len(ratios) == 2 and all(r > 1 for r in ratios)  # a second-order step does more than a plain one
    bad = subprocess.run([sys.executable, str(SCRIPT.parent / "second_order_ratio.py"), "--turns", "0"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--turns must be at least 1" in bad.stderr


REAL_DATA = Path(__file__).parents[1] / "benchmarks" / "real_data.py"


def test_real_data_sets_and_their_non_neural_baselines(tmp_path):
    sys.path.insert(0, str(REAL_DATA.parent))
    try:
        import real_data
    finally:
        sys.path.pop(0)
    # 1-NN with Euclidean distance on GunPoint's UCR split: the archive's published error is 0.087
    name, accuracy = real_data.non_neural("gunpoint", 0, tmp_path)
    assert name == "1-NN, Euclidean" and abs(accuracy - (1 - 0.087)) < 0.001
    words, labels = real_data.lexicon_entries()
    assert len(words) > 7000 and 0.3 < labels.mean() < 0.7
    assert real_data.lexicon_tokens(["ab", "é" + "x" * 20]).tolist() == [
        [67, 68] + [0] * 14, [1] + [90] * 15]  # printable ASCII c -> ord(c) - 30; others 1; 16 characters


@pytest.mark.slow
def test_the_real_data_script_writes_its_table(tmp_path):
    result = subprocess.run([sys.executable, str(REAL_DATA), "--datasets", "cancer,wine", "--seeds", "1", "--quiet",
                             "--out", str(tmp_path), "--search.epochs=2",
                             "--search.warmup_epochs", "0", "--train.epochs", "1", "--log.plots", "false"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr
    for row in json.loads((tmp_path / "real_data.json").read_text()):
        assert {"DARTS first order", "random genotype", "logistic regression (non-neural)"} <= set(row["accuracy"])
    assert "| cancer (linear) |" in (tmp_path / "real_data.md").read_text()
    assert "| wine (linear) |" in (tmp_path / "real_data.md").read_text()  # a CSV through the table task
    assert (tmp_path / "wine.csv").read_text().startswith("alcohol,malic_acid,")
    bad = subprocess.run([sys.executable, str(REAL_DATA), "--datasets", "mnist"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown data set" in bad.stderr


@pytest.mark.slow
def test_the_planted_script_scores_searched_and_random_genotypes(tmp_path):
    script = Path(__file__).parents[1] / "benchmarks" / "planted.py"
    result = subprocess.run([sys.executable, str(script), "--seeds", "1", "--selection", "alpha", "--quiet", "--out",
                             str(tmp_path), "--data.samples", "64", "--data.test_samples", "32", "--search.epochs",
                             "2", "--search.warmup_epochs", "0", "--train.epochs", "1", "--log.plots", "false",
                             "--strategies", "darts,fair-darts"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "planted.json").read_text())["genotypes"]
    assert [(r["strategy"], r["model"]) for r in rows] == [("darts", "searched"), ("fair-darts", "searched"),
                                                            ("", "random genotype"), ("", "random genotype"),
                                                            ("", "teacher's cell")]
    assert all(0 <= r["genes"] <= 1 and r["chance_genes"] == rows[0]["chance_genes"] for r in rows)
    assert rows[-1]["genes"] == rows[-1]["inputs"] == rows[-1]["primitives"] == 1.0  # the control is the teacher
    assert "expected at random" in result.stdout
    assert {r["metric"] for r in rows} == {"accuracy"} and "test accuracy" in result.stdout
    bad = subprocess.run([sys.executable, str(script), "--selection", "argmax"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--selection" in bad.stderr


def test_the_planted_scripts_one_gene_control_pairs_each_cell_with_the_teacher_by_seed(tmp_path, monkeypatch):
    """Trainings replaced by fixed scores: the table's differences, by hand."""
    import importlib.util

    import darts.workflows
    from darts.data.planted import one_gene_changes, teacher_genotype

    spec = importlib.util.spec_from_file_location("planted", Path(__file__).parents[1] / "benchmarks" / "planted.py")
    planted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(planted)
    names = [genotype.to_dict() for _, genotype in [("", teacher_genotype()), *one_gene_changes()]]
    scores = {0: [0.9] + [0.8] * 11 + [0.95], 1: [0.7] + [0.72] * 11 + [0.8]}  # seed -> teacher, changes

    def train(config, genotype, runs, quiet, run_name):
        run_dir = Path(runs) / run_name
        run_dir.mkdir(parents=True)
        score = scores[config.seed][names.index(genotype.to_dict())]
        (run_dir / "results.json").write_text(json.dumps({"test": {"test_loss": 1.0, "test_r2": score}}))
        return run_dir

    monkeypatch.setattr(darts.workflows, "train", train)
    rows = planted.one_gene_changes(2, tmp_path, True, {"data.classes": 0})
    assert len(rows) == 2 * 13 and {r["metric"] for r in rows} == {"R2"}
    text = planted.changes_table(rows)
    assert "| teacher's cell | 2 | 0.8000 +- 0.1414 |  |" in text
    # 11 changes: (0.8 - 0.9 + 0.72 - 0.7) / 2 = -0.04; the last one: (0.95 - 0.9 + 0.8 - 0.7) / 2 = +0.075
    assert text.count("| -0.0400 |") == 11 and text.count("| +0.0750 |") == 1
    assert "beats 11 of its 12 one-gene changes" in text
