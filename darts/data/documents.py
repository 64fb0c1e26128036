"""Document classification data a user has: CANDLE P3B3 token-id files, or a table of raw text.

Both loaders return :class:`Documents`: token ids (documents, length) with 0 as padding, one label array
per task re-indexed to contiguous class ids, and what a run must keep to read its data again (the label
mapping, and for text the vocabulary built on the training split only). Every problem with a file is a
:class:`DataFileError` that names the file and what is wrong.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

P3B3_TASKS = ("subsite", "laterality", "behavior", "grade")
PAD, UNKNOWN = 0, 1


class DataFileError(ValueError):
    """A data file that cannot be used; the message names the file and the problem."""


@dataclass
class Documents:
    """Token ids of a training and a test split and their labels per task (contiguous ids)."""

    train_tokens: np.ndarray
    train_labels: dict[str, np.ndarray]
    test_tokens: np.ndarray
    test_labels: dict[str, np.ndarray]
    vocab_size: int
    classes: dict[str, int]
    artifacts: dict[str, Any] = field(default_factory=dict)


# --- P3B3 files ------------------------------------------------------------------------------------------
def load_p3b3(folder: str | Path, tasks: Sequence[str] | None = None, sequence_length: int | None = None,
              vocab_size: int | None = None) -> Documents:
    """Read ``train_X.npy``, ``train_Y.npy``, ``test_X.npy``, ``test_Y.npy`` from ``folder``.

    X: integer token ids (documents, length), 0 as padding; Y: integer labels (documents, tasks), columns
    named by ``tasks`` (CANDLE's subsite, laterality, behavior, grade by default). ``sequence_length``
    pads or truncates (default: the training files' length); ``vocab_size`` defaults to the largest id + 1.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder; P3B3 data is a folder with train_X.npy, train_Y.npy, "
                            "test_X.npy and test_Y.npy")
    arrays = {name: _load_npy(folder / f"{name}.npy") for name in ("train_X", "train_Y", "test_X", "test_Y")}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_X"], arrays[f"{split}_Y"]
        _check_integer(x, folder / f"{split}_X.npy", "token ids")
        _check_integer(y, folder / f"{split}_Y.npy", "labels")
        if x.ndim != 2:
            raise DataFileError(f"{folder / f'{split}_X.npy'}: expected a 2-D array (documents, tokens), got shape "
                                f"{x.shape}")
        if y.ndim == 1:
            arrays[f"{split}_Y"] = y = y[:, None]
        if y.ndim != 2:
            raise DataFileError(f"{folder / f'{split}_Y.npy'}: expected a 2-D array (documents, tasks), got shape "
                                f"{y.shape}")
        if len(x) != len(y):
            raise DataFileError(f"{folder}: {split}_X.npy has {len(x)} documents but {split}_Y.npy has {len(y)} "
                                "label rows; they must match row for row")
    columns = arrays["train_Y"].shape[1]
    tasks = tuple(tasks) if tasks is not None else (P3B3_TASKS if columns == 4 else
                                                    tuple(f"task_{i}" for i in range(columns)))
    for split in ("train", "test"):
        found = arrays[f"{split}_Y"].shape[1]
        if found < len(tasks):
            raise DataFileError(f"{folder / f'{split}_Y.npy'}: label column {found} ({tasks[found]!r}) is missing: the "
                                f"file has {found} columns for the tasks {list(tasks)}")
    if arrays["test_Y"].shape[1] != columns:
        raise DataFileError(f"{folder}: train_Y.npy has {columns} label columns but test_Y.npy has "
                            f"{arrays['test_Y'].shape[1]}; both need one column per task, in the same order")
    low = min(int(arrays["train_X"].min()), int(arrays["test_X"].min()))
    if low < 0:
        where = "train_X.npy" if int(arrays["train_X"].min()) < 0 else "test_X.npy"
        raise DataFileError(f"{folder / where}: token id {low} is negative; ids are 0 (padding) or positive")
    largest = max(int(arrays["train_X"].max()), int(arrays["test_X"].max()))
    if vocab_size is None:
        vocab_size = largest + 1
    elif largest >= vocab_size:
        where = "train_X.npy" if int(arrays["train_X"].max()) >= vocab_size else "test_X.npy"
        raise DataFileError(f"{folder / where}: token id {largest} is out of range for vocab_size {vocab_size} "
                            f"(ids must be below it; leave vocab_size unset to take it from the data)")
    length = sequence_length or arrays["train_X"].shape[1]
    from darts.data.checks import check_labels

    check_labels({t: arrays["train_Y"][:, i] for i, t in enumerate(tasks)},
                 {t: arrays["test_Y"][:, i] for i, t in enumerate(tasks)}, f"{folder} (train_Y.npy, test_Y.npy)")
    labels, mapping = reindex_labels({s: {t: arrays[f"{s}_Y"][:, i] for i, t in enumerate(tasks)}
                                      for s in ("train", "test")})
    return Documents(_fit_length(arrays["train_X"], length), labels["train"], _fit_length(arrays["test_X"], length),
                     labels["test"], vocab_size, {t: len(m) for t, m in mapping.items()},
                     {"labels.json": {"tasks": list(tasks), "classes": mapping}})


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataFileError(f"{path}: file not found (P3B3 data needs train_X.npy, train_Y.npy, test_X.npy, "
                            "test_Y.npy)")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: the file is empty")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{path}: not a readable .npy array ({error})") from error
    if array.size == 0:
        raise DataFileError(f"{path}: the array is empty (shape {array.shape})")
    return array


def _check_integer(array: np.ndarray, path: Path, what: str) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise DataFileError(f"{path}: {what} must be integers, got dtype {array.dtype} "
                            "(convert with array.astype(np.int64) if the values are whole numbers)")


def _fit_length(tokens: np.ndarray, length: int) -> np.ndarray:
    """Truncate or pad with 0 to ``length`` tokens."""
    out = np.zeros((len(tokens), length), dtype=np.int64)
    keep = min(length, tokens.shape[1])
    out[:, :keep] = tokens[:, :keep]
    return out


def reindex_labels(labels: dict[str, dict[str, np.ndarray]]) -> tuple[dict, dict[str, list]]:
    """Map each task's labels (train and test together) to 0..k-1; returns the new labels and the mapping."""
    tasks = labels["train"].keys()
    mapping = {t: sorted(set(labels["train"][t].tolist()) | set(labels["test"][t].tolist())) for t in tasks}
    lookup = {t: {value: index for index, value in enumerate(values)} for t, values in mapping.items()}
    relabelled = {split: {t: np.array([lookup[t][v] for v in column.tolist()], dtype=np.int64)
                          for t, column in per_task.items()} for split, per_task in labels.items()}
    return relabelled, {t: [_plain(v) for v in values] for t, values in mapping.items()}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --- raw text tables ----------------------------------------------------------------------------------------
TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, underscores)."""
    return TOKEN.findall(str(text).lower())


@dataclass
class Vocabulary:
    """Token -> id, built on training texts only: 0 is padding, 1 unknown, then by frequency."""

    tokens: list[str]

    @classmethod
    def build(cls, texts: Sequence[str], min_count: int = 1, max_size: int | None = None) -> "Vocabulary":
        counts = Counter(token for text in texts for token in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[:max(0, max_size - 2)]
        return cls(["<pad>", "<unk>", *ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: Sequence[str], length: int) -> np.ndarray:
        index = {token: i for i, token in enumerate(self.tokens)}
        out = np.zeros((len(texts), length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [index.get(token, UNKNOWN) for token in tokenize(text)][:length]
            out[row, :len(ids)] = ids
        return out


def load_text_table(path: str | Path, text_column: str, tasks: Sequence[str], test_path: str | Path | None = None,
                    test_fraction: float = 0.2, sequence_length: int = 512, vocab_size: int | None = None,
                    min_count: int = 1, seed: int = 0) -> Documents:
    """A CSV or TSV (by extension, ``.tsv``/``.tab`` for tabs) with a text column and one label column per task.

    Without ``test_path``, ``test_fraction`` of the rows (at random, from ``seed``) is the test split. The
    vocabulary (at most ``vocab_size`` entries, tokens seen at least ``min_count`` times) comes from the
    training split only; words it lacks become the unknown id 1.
    """
    train = _read_table(Path(path), text_column, tasks)
    if test_path is not None:
        test = _read_table(Path(test_path), text_column, tasks)
    else:
        if len(train) < 2:
            raise DataFileError(f"{path}: {len(train)} row(s); splitting off a test set needs at least 2")
        order = np.random.default_rng(seed).permutation(len(train))
        cut = min(len(train) - 1, max(1, round(test_fraction * len(train))))
        train, test = train.iloc[order[cut:]], train.iloc[order[:cut]]
    from darts.data.checks import check_labels

    check_labels({t: train[t].to_numpy() for t in tasks}, {t: test[t].to_numpy() for t in tasks},
                 str(path) if test_path is None else f"{path}, {test_path}")
    vocabulary = Vocabulary.build(train[text_column].tolist(), min_count, vocab_size)
    if len(vocabulary) <= 2:
        raise DataFileError(f"{path}: no training text in column {text_column!r} holds a word, so there is nothing "
                            "to read; check the column name and the file's separator")
    labels, mapping = reindex_labels({"train": {t: train[t].to_numpy() for t in tasks},
                                "test": {t: test[t].to_numpy() for t in tasks}})
    return Documents(vocabulary.encode(train[text_column].tolist(), sequence_length), labels["train"],
                     vocabulary.encode(test[text_column].tolist(), sequence_length), labels["test"],
                     len(vocabulary), {t: len(m) for t, m in mapping.items()},
                     {"labels.json": {"tasks": list(tasks), "classes": mapping},
                      "vocabulary.json": {"tokens": vocabulary.tokens, "padding": PAD, "unknown": UNKNOWN}})


def _read_table(path: Path, text_column: str, tasks: Sequence[str]):
    from darts.data.tables import read_table

    table = read_table(path, {"text": [text_column], "label": tasks}, dtype={text_column: str}, keep_default_na=False)
    blank = [t for t in tasks if (table[t].astype(str).str.strip() == "").any()]
    if blank:
        raise DataFileError(f"{path}: label column(s) {blank} have empty cells; every row needs a label per task")
    return table
