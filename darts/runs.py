"""Run directories: every run writes to a folder of its own and never into another run's."""

from __future__ import annotations

import json
import time
from pathlib import Path

from darts import distributed


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return ``root/name-YYYYmmdd-HHMMSS`` (with a numeric suffix if that exists already).

    Under torch.distributed, rank 0 creates it and every rank gets its path."""
    if distributed.active():
        return Path(distributed.broadcast(str(_create_run_dir(root, name)) if distributed.is_main() else None))
    return _create_run_dir(root, name)


def _create_run_dir(root: str | Path, name: str) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = root / (f"{name}-{stamp}" if attempt == 0 else f"{name}-{stamp}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a new run directory under {root}")


#: events printed in quiet mode too: what a user must not miss
ALWAYS_SHOWN = ("warning", "verdict")


class RunLog:
    """A run's human log (``log.txt``) and machine-readable event log (``events.jsonl``), echoed to a console.

    Both files are appended to, so a resumed run keeps the story of the killed one.
    """

    def __init__(self, run_dir: str | Path, console=None, quiet: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.console = console
        self.quiet = quiet

    def event(self, kind: str, message: str | None = None, echo: bool = True, **fields) -> None:
        """Record an event: a JSON line with its fields, and ``message`` as a human line (printed unless quiet).
        Only rank 0 of a distributed run records."""
        if not distributed.is_main():
            return
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": kind, **fields}
        with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(record, default=str) + "\n")
        if message is not None:
            with open(self.run_dir / "log.txt", "a", encoding="utf-8") as file:
                file.write(f"{record['time']} {message}\n")
            if echo and self.console is not None and (not self.quiet or kind in ALWAYS_SHOWN):
                self.console.print(message, highlight=False, soft_wrap=True)
