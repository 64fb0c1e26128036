"""Run directories: every run writes to a folder of its own and never into another run's."""

from __future__ import annotations

import time
from pathlib import Path


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return ``root/name-YYYYmmdd-HHMMSS`` (with a numeric suffix if that exists already)."""
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
