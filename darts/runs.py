"""Run directories: every run writes to a folder of its own and never into another run's."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from darts import distributed
from darts.io import strict_json

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs are not guarded
    fcntl = None


def new_run_dir(root: str | Path, name: str, exact: bool = False) -> Path:
    """Create and return ``root/name-YYYYmmdd-HHMMSS`` (with a numeric suffix if that exists already), or
    with ``exact`` ``root/name`` itself (an error if it exists).

    Under torch.distributed, rank 0 creates it and every rank gets its path."""
    if distributed.active():
        return Path(distributed.broadcast(str(_create_run_dir(root, name, exact)) if distributed.is_main() else None))
    return _create_run_dir(root, name, exact)


def _create_run_dir(root: str | Path, name: str, exact: bool = False) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if exact:
        (root / name).mkdir()
        return root / name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = root / (f"{name}-{stamp}" if attempt == 0 else f"{name}-{stamp}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a new run directory under {root}")


LOCK = ".lock"
_held: dict[str, int] = {}  # run folders this process holds: resolved path -> the locked file descriptor


class RunInUseError(ValueError):
    """A run folder another process is writing (a run or a ``--resume`` in progress)."""


def lock_run_dir(run_dir: str | Path) -> None:
    """Own ``run_dir`` until :func:`unlock_run_dir` or this process ends: a second process that tries is refused
    with the holder's process id. (An advisory ``flock``: the kernel drops it when the holder dies.)"""
    path = Path(run_dir).resolve()
    if str(path) in _held or fcntl is None:
        return
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunInUseError(f"{run_dir} is in use by process {holder} (a run or --resume in progress); wait for it "
                            "to end or stop it, then resume") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[str(path)] = fd


def unlock_run_dir(run_dir: str | Path) -> None:
    """Give up a run folder this process locked (nothing if it holds none)."""
    path = Path(run_dir).resolve()
    fd = _held.pop(str(path), None)
    if fd is not None:
        (path / LOCK).unlink(missing_ok=True)
        os.close(fd)


#: events printed in quiet mode too: what a user must not miss
ALWAYS_SHOWN = ("warning", "verdict", "result")

#: every line of log.txt goes to this logger too (``logging.getLogger("darts")``), so a user's handlers get it
logger = logging.getLogger("darts")
logger.addHandler(logging.NullHandler())  # a library's logger: silent unless the user configures logging
LEVELS = {"warning": logging.WARNING, "error": logging.ERROR, "interrupted": logging.WARNING}


class RunLog:
    """A run's human log (``log.txt``) and machine-readable event log (``events.jsonl``), echoed to a console.

    Both files are appended to, so a resumed run keeps the story of the killed one. Each line of ``log.txt`` is
    also a record of the ``darts`` logger (level WARNING for warnings, ERROR for errors, INFO otherwise) whose
    ``run_dir`` and ``event`` attributes say where it comes from.
    """

    #: the log of the run this process works on now: where the CLI's error boundary records an ``error`` event
    current: "RunLog | None" = None

    def __init__(self, run_dir: str | Path, console=None, quiet: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.console = console
        self.quiet = quiet
        self.previous, RunLog.current = RunLog.current, self

    def close(self) -> None:
        """The run ended: errors from now on belong to the run that was current before (a benchmark's)."""
        if RunLog.current is self:
            RunLog.current = self.previous

    def event(self, kind: str, message: str | None = None, echo: bool = True, **fields) -> None:
        """Record an event: a JSON line with its fields, and ``message`` as a human line (printed unless quiet).
        Only rank 0 of a distributed run records."""
        if not distributed.is_main():
            return
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": kind, **fields}
        if message is not None and kind in ALWAYS_SHOWN:
            record.setdefault("message", message)
        with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(strict_json(record), default=str) + "\n")
        if message is not None:
            with open(self.run_dir / "log.txt", "a", encoding="utf-8") as file:
                file.write(f"{record['time']} {message}\n")
            logger.log(LEVELS.get(kind, logging.INFO), message, extra={"run_dir": str(self.run_dir), "event": kind})
            if echo and self.console is not None and (not self.quiet or kind in ALWAYS_SHOWN):
                self.console.print(message, highlight=False, soft_wrap=True)
