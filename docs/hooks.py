"""mkdocs hooks: the configuration reference generated from the pydantic schema, and a docstring check.

- ``reference/configuration.md`` is written at build time from :func:`darts.config.schema_fields` and the
  presets, so it is never edited by hand and never out of date.
- Every public class, function and method that a ``::: module`` line of the reference pages documents must
  have a docstring; a missing one is a warning, which ``mkdocs build --strict`` turns into a failure.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from itertools import groupby
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.darts")

CONFIG_PAGE = "reference/configuration.md"
SECTIONS = {
    "": "Run",
    "model": "Model (`model.*`)",
    "search": "Search (`search.*`)",
    "train": "Training from scratch (`train.*`)",
    "lm": "Language models (`lm.*`)",
    "bench": "Benchmarks (`bench.*`)",
    "log": "Logging (`log.*`)",
}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def configuration_reference() -> str:
    """The configuration reference page, one table per section and one per task's ``data.*`` options."""
    from darts.config import preset_names, read_config_source, schema_fields

    fields = schema_fields()
    lines = [
        "# Configuration keys",
        "",
        "Generated from the configuration schema (`darts/config.py`) when the site is built. Every key can be",
        "set in a YAML file or on the command line as `--section.key VALUE`; `darts search --help` prints the same",
        "list. See [Configuration](../guide/configuration.md) for how a configuration is read and checked.",
        "",
    ]

    def table(entries) -> list[str]:
        rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        rows += [f"| `{f.key}` | {_cell(f.kind)} | {_cell(f.default.removeprefix('default '))} | "
                 f"{_cell(f.description)} |" for f in entries]
        return rows + [""]

    general = [f for f in fields if f.task is None]
    section_of = (lambda f: f.key.split(".")[0] if "." in f.key else "")
    for section, title in SECTIONS.items():
        entries = [f for f in general if section_of(f) == section]
        if entries:
            lines += [f"## {title}", ""] + table(entries)
    unknown = sorted({section_of(f) for f in general} - set(SECTIONS))
    for section in unknown:
        lines += [f"## `{section}.*`", ""] + table([f for f in general if section_of(f) == section])
    lines += ["## Data (`data.*`), by task", "",
              "The `data` section holds the options of the configuration's `task`; each task checks its own.", ""]
    for task, entries in groupby([f for f in fields if f.task], key=lambda f: f.task):
        lines += [f"### Task `{task}`", ""] + table(entries)
    lines += ["## Presets", "", "A preset is a configuration shipped with the package (`darts/presets/`), used by name:",
              "`darts search motifs-quick`. Its first comment says what it is for.", "",
              "| preset | task | what it is |", "| --- | --- | --- |"]
    for name in preset_names():
        data, path = read_config_source(name)
        comment = []
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.startswith("#") or line.startswith("#   "):  # the comment ends, or its commands start
                break
            comment.append(line.lstrip("#").strip())
        text = re.split(r":\s{2,}", " ".join(comment))[0]  # a command on the same line
        first = re.split(r"(?<=[a-z0-9)])\. (?=[A-Z])", text)[0].rstrip(".:")
        lines.append(f"| `{name}` | `{data.get('task')}` | {_cell(first)} |")
    return "\n".join(lines) + "\n"


def on_files(files, config):
    """Add the generated configuration reference to the site."""
    files.append(File.generated(config, CONFIG_PAGE, content=configuration_reference()))
    return files


def _public_members(module_name: str):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, value in vars(module).items() if not name.startswith("_")
                 and getattr(value, "__module__", None) == module_name]
    for name in names:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            yield f"{module_name}.{name}", value
            if inspect.isclass(value):
                for attribute, member in vars(value).items():
                    if attribute.startswith("_"):
                        continue
                    function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    if inspect.isfunction(function):  # getattr: an override inherits its base's docstring
                        yield f"{module_name}.{name}.{attribute}", getattr(value, attribute)


def on_pre_build(config):
    """Warn (an error under --strict) for each documented public object without a docstring."""
    docs = Path(config["docs_dir"])
    modules = sorted({match for page in docs.rglob("*.md")
                      for match in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M)})
    for module_name in modules:
        for qualified, value in _public_members(module_name):
            if not inspect.getdoc(value):
                log.warning("missing docstring: %s (documented by a '::: %s' line)", qualified, module_name)
