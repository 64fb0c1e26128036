"""Reading files that may be hostile (a user's data, a copied run folder) without running code from them.

- :func:`load_pickle`: a pickle restricted to plain data (numbers, strings, bytes, lists, tuples, dicts and
  numpy arrays of numbers); anything else is an :class:`UntrustedFileError` naming the file.
- :func:`load_torch`: ``torch.load(weights_only=True)`` whose failures (a tampered or truncated file) are
  one-line errors naming the file.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# the only globals a pickle of plain data and numpy arrays of numbers refers to
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class UntrustedFileError(ValueError):
    """A file that is not the plain data it should be; the message names the file, ``reason`` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which plain data never does")


def _numbers_only(value: Any, path: Path) -> Any:
    if isinstance(value, np.ndarray) and not (np.issubdtype(value.dtype, np.number)
                                              or np.issubdtype(value.dtype, np.bool_)):
        raise UntrustedFileError(path, f"holds an array of {value.dtype}; only arrays of numbers are read")
    if isinstance(value, dict):
        for item in value.values():
            _numbers_only(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _numbers_only(item, path)
    return value


def load_pickle(path: str | Path, encoding: str = "bytes") -> Any:
    """The plain data pickled in ``path``, never an object that runs code when it is built."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            value = _PlainDataUnpickler(handle, encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError,
            MemoryError, RecursionError) as error:
        raise UntrustedFileError(path, f"not a pickle of plain data ({type(error).__name__}: {error})") from error
    return _numbers_only(value, path)


def load_torch(path: str | Path, what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU; a tampered, truncated or foreign file is an UntrustedFileError."""
    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch's notes on a foreign pickle protocol: the error below says enough
            warnings.simplefilter("ignore", UserWarning)
            # from the file (no second copy of it in memory), onto the CPU: a GPU run's files load anywhere
            return torch.load(path, weights_only=True, map_location="cpu")
    except OSError as error:
        raise UntrustedFileError(path, f"cannot read the {what} ({error.strerror or error})") from error
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UntrustedFileError(path, f"not a readable {what}: {first_line[:300]}") from error
