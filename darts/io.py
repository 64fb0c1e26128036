"""Files written so that a reader never sees half of one: temporary file in the same folder, then rename."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; with ``overwrite=False`` an existing file is an error."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it (choose another path)")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_orphans(path.parent)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the user's usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


TMP_SUFFIX = ".tmp"
# .<name>.<pid>.<random>.tmp: the temporary file of an atomic write by process <pid>
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[^.]+" + re.escape(TMP_SUFFIX) + "$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files that killed atomic writes left in ``folder`` (their process is gone)."""
    swept = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return swept
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not _alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
                swept.append(Path(entry.path))
            except OSError:
                pass
    return swept


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite)


def strict_json(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by None, so that it dumps as strict JSON (``null``)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    return data


def atomic_write_json(path: str | os.PathLike, data: Any, overwrite: bool = True) -> Path:
    """Strict JSON (NaN and infinities as ``null``), written atomically."""
    return atomic_write_text(path, json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n", overwrite)
