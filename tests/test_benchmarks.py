"""The step-speed benchmark runs and reports every step with its ratios (tiny configuration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "step_speed.py"


def test_step_speed_benchmark_writes_figures_and_ratios(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--configs", "tiny", "--repeats", "1", "--warmup", "0",
                             "--out", str(tmp_path / "figures.json")], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "figures.json").read_text())["rows"]
    assert [r["step"] for r in rows] == ["plain", "first", "second", "exact", "fast"]
    assert rows[0]["time_ratio_to_plain"] == 1.0 and all(r["seconds"] > 0 and r["peak_rss_gib"] > 0 for r in rows)
    assert "x plain" in result.stdout


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
