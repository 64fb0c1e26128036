"""The README is a door, and the documentation site builds strictly from docs/ and the docstrings."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from darts.config import ModelConfig, SearchConfig, TrainConfig, load_config

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_the_readme_is_a_door_whose_links_all_open():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert "docs/index.md" in local and "CONTRIBUTING.md" in local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
    pages = {str(page.relative_to(ROOT)) for page in DOCS.rglob("*.md")} - {"docs/index.md"}
    unlinked = sorted(page for page in pages if page not in local and not page.startswith("docs/reference/"))
    assert not unlinked, f"README's documentation table misses {unlinked}"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_configuration_example_in_the_docs_is_valid(path):
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
              if b.startswith("task:")]
    for block in blocks:
        load_config(yaml.safe_load(block))


def test_the_configuration_guide_example_is_the_paper_like_search():
    text = (DOCS / "guide" / "configuration.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("task:")]
    config = load_config(yaml.safe_load(block))
    assert config.search.order == "second" and config.model.nodes == 3


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_lists_every_key_of_the_schema():
    page = _hooks().configuration_reference()
    for section, model in (("model", ModelConfig), ("search", SearchConfig), ("train", TrainConfig)):
        for name in model.model_fields:  # pydantic's own list of the fields
            assert f"| `{section}.{name}` |" in page, f"{section}.{name} missing from the reference"
    assert "### Task `p3b5`" in page and "| `data.sequence_length` |" in page
    assert "| `p3b5-quick` | `p3b5` |" in page
    assert "\\|" in page  # union types are escaped inside table cells ("str | None")


def test_a_documented_object_without_a_docstring_is_a_build_warning(tmp_path, monkeypatch, caplog):
    package = tmp_path / "undocumented_pkg.py"
    package.write_text('"""A module."""\n\n\ndef documented():\n    """Yes."""\n\n\ndef bare():\n    pass\n\n\n'
                       'class Thing:\n    """A thing."""\n\n    def method(self):\n        pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "api.md").write_text("# API\n\n::: undocumented_pkg\n")
    with caplog.at_level(logging.WARNING, logger="mkdocs.hooks.darts"):
        _hooks().on_pre_build({"docs_dir": str(docs)})
    warned = sorted(record.getMessage().split(":")[1].split()[0] for record in caplog.records)
    assert warned == ["undocumented_pkg.Thing.method", "undocumented_pkg.bare"]


@pytest.mark.slow
def test_the_documentation_site_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's notice about its successor
    env.pop("DARTS_DISABLE_PLUGIN_AUTOLOAD", None)  # the API pages show the built-in families' registry
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    reference = (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "search.warmup_epochs" in reference
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="darts.Architecture"' in api and 'id="darts.training.trainer.Callback"' in api
