"""The examples run as a user runs them, in quick settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("script, args, expected", [
    ("uno/fixed_model.py", ["--epochs", "2", "--samples", "600"], "ridge (scikit-learn)"),
    ("advanced/custom_primitive.py", ["--epochs", "1", "--samples", "128"], "gated_conv_3"),
])
def test_example_runs(script, args, expected, tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                            cwd=tmp_path, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
