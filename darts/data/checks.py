"""Checks of the values a user's data holds, not only its shapes: every loader runs its arrays through these.

A problem that makes the data unusable is a :class:`DataFileError` naming the file and what is wrong; one
the data survives (test classes never seen in training) is a :class:`DataWarning`, which a run records in
its log.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from darts.data.documents import DataFileError


class DataWarning(UserWarning):
    """Data that can be used, but probably not as the user meant: the message names the file."""


def check_features(x: np.ndarray, where: str) -> None:
    """Real, finite numbers: complex values, NaN and infinities are errors naming ``where``."""
    if np.iscomplexobj(x):
        raise DataFileError(f"{where}: complex values ({x.dtype}); darts reads real numbers, so pass the real part, "
                            "the magnitude, or both as separate channels")
    if not np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.bool_):
        raise DataFileError(f"{where}: values must be numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataFileError(f"{where}: {int(bad.sum())} NaN or infinite value(s), the first at index {first}; "
                                "fill or drop them before training")


def check_labels(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], where: str,
                 classes: int | None = None) -> None:
    """Class labels per task: at least two classes in training; where the format fixes the count
    (``classes``), labels 0..classes-1. Negative labels elsewhere, and test classes never seen in training,
    give a DataWarning."""
    for task, labels in train.items():
        name = f" (task {task!r})" if len(train) > 1 else ""
        for split, column in (("training", labels), ("test", test[task])):
            column = np.asarray(column)
            if np.issubdtype(column.dtype, np.integer):
                low, high = int(column.min()), int(column.max())
                if low < 0 and classes is not None:
                    raise DataFileError(f"{where}: {split} label {low} is negative{name}; this format labels its "
                                        f"{classes} classes 0..{classes - 1}")
                if low < 0:
                    warnings.warn(f"{where}: {split} label {low} is negative{name}; it is kept as a class of its "
                                  "own (if it marks a missing label, drop those rows)", DataWarning, stacklevel=2)
                if classes is not None and high >= classes:
                    raise DataFileError(f"{where}: {split} label {high} is out of range{name}; this format has "
                                        f"{classes} classes, labelled 0..{classes - 1}")
        seen = set(np.asarray(labels).tolist())
        if len(seen) < 2:
            raise DataFileError(f"{where}: the training labels hold a single class ({next(iter(seen))!r}){name}, so "
                                "there is nothing to learn; a classifier needs at least two")
        unseen = sorted(set(np.asarray(test[task]).tolist()) - seen, key=str)
        if unseen:
            count = int(np.isin(np.asarray(test[task]), unseen).sum())
            warnings.warn(f"{where}: test label(s) {unseen[:5]}{' ...' if len(unseen) > 5 else ''}{name} never "
                          f"appear in training ({count} test example(s)): the network cannot learn them and they "
                          "count as errors", DataWarning, stacklevel=2)
