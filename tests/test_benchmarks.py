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
