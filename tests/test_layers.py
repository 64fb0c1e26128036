"""The layering rules of ``.importlinter``, run by import-linter as part of the suite, and shown to bite."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages found in ``cwd`` (a subprocess: the packages are parsed, not imported)."""
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_cache=True))"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_the_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout  # every contract of .importlinter


def test_a_core_module_that_imports_a_plugin_breaks_the_contract(tmp_path):
    for package in ("darts", "darts_plugins"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "presets"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    kernels = tmp_path / "darts" / "kernels.py"
    kernels.write_text(kernels.read_text() + "\n\ndef _late():\n    from darts_plugins.common import Zero  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode == 1 and "darts.kernels -> darts_plugins.common" in result.stdout, result.stdout


def test_the_command_line_contract_lists_every_module_but_the_command_line():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    listed = set(config["importlinter:contract:cli-on-top"]["source_modules"].split())
    graph = grimp.build_graph("darts", cache_dir=None)
    top = {m for m in graph.modules if m.count(".") == 1} - {"darts.cli", "darts.__main__"}
    assert top <= listed, sorted(top - listed)
    # the package itself (darts/__init__.py), which the list cannot name without naming the CLI too
    assert graph.find_modules_directly_imported_by("darts") & {"darts.cli", "darts.__main__"} == set()
