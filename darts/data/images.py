"""Image and signal data in the formats users have on disk (no downloads, no torchvision).

- :func:`load_cifar`: the CIFAR-10 or CIFAR-100 "python version" folder (pickled batches).
- :class:`ImageFolder`: ``root/<class>/<image>`` (or ``root/train/<class>``, ``root/val|test/<class>``),
  decoded with Pillow when an item is read, resized (shorter side) and centre-cropped to a square.
- :func:`load_arrays`: a ``.npz`` with ``x_train, y_train, x_test, y_test`` (or ``x, y`` to split), where
  x is (N, L) or (N, C, L) for 1D signals and (N, C, H, W) for images.

Every problem is a :class:`~darts.data.documents.DataFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from darts.data.checks import check_features, check_labels
from darts.data.documents import DataFileError
from darts.untrusted import UntrustedFileError, load_pickle

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_cifar(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(x_train, y_train, x_test, y_test, class names) from a CIFAR-10 or CIFAR-100 python folder; x uint8 (N, 3, 32, 32)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder; give the extracted cifar-10-batches-py or cifar-100-python folder")
    if (folder / "data_batch_1").exists():
        train_files, test_files, meta, label_key, names_key = (
            [folder / f"data_batch_{i}" for i in range(1, 6)], [folder / "test_batch"], folder / "batches.meta",
            b"labels", b"label_names")
    elif (folder / "train").exists():
        train_files, test_files, meta, label_key, names_key = (
            [folder / "train"], [folder / "test"], folder / "meta", b"fine_labels", b"fine_label_names")
    else:
        raise DataFileError(f"{folder}: neither CIFAR-10 (data_batch_1 ... test_batch) nor CIFAR-100 (train, test) "
                            "python batches are here")

    def read(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for path in files:
            if not path.exists():
                raise DataFileError(f"{path}: file not found")
            try:
                batch = load_pickle(path)
                data, label = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
            except UntrustedFileError as error:
                raise DataFileError(f"{path}: not a CIFAR python batch: {error.reason}") from error
            except (KeyError, TypeError, IndexError) as error:
                raise DataFileError(f"{path}: not a CIFAR python batch (no {error} entry)") from error
            if data.dtype != np.uint8 or not np.issubdtype(label.dtype, np.integer):
                raise DataFileError(f"{path}: expected uint8 pixels and integer labels, got {data.dtype} and "
                                    f"{label.dtype}")
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(label):
                raise DataFileError(f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} "
                                    f"and {len(label)} labels")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(label)
        return np.concatenate(images), np.concatenate(labels)

    x_train, y_train = read(train_files)
    x_test, y_test = read(test_files)
    names: list[str] = []
    if meta.exists():
        try:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in load_pickle(meta)[names_key]]
        except UntrustedFileError as error:
            raise DataFileError(str(error)) from error
        except (KeyError, TypeError, AttributeError) as error:
            raise DataFileError(f"{meta}: not CIFAR class names (no {error} entry)") from error
    classes = len(names) or (10 if (folder / "data_batch_1").exists() else 100)
    check_labels({"label": y_train}, {"label": y_test}, str(folder), classes)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), names or [str(i) for i in range(classes)]


class ImageFolder(Dataset):
    """Images in class folders, read lazily: item ``i`` is (float tensor (3, size, size) in [0, 1], class id)."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], size: int) -> None:
        self.files, self.labels, self.size = list(files), list(labels), size

    @staticmethod
    def scan(root: str | Path) -> tuple[list[Path], list[int], list[str]]:
        """The image files under ``root/<class>/``, their class ids and the class names (sorted)."""
        root = Path(root)
        if not root.is_dir():
            raise DataFileError(f"{root}: not a folder of class folders")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not classes:
            raise DataFileError(f"{root}: no class folders (expected {root}/<class name>/<image files>)")
        files, labels = [], []
        for index, name in enumerate(classes):
            found = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataFileError(f"{root / name}: no image files ({', '.join(IMAGE_SUFFIXES)})")
            files += found
            labels += [index] * len(found)
        if len(classes) < 2:
            raise DataFileError(f"{root}: one class folder ({classes[0]!r}), so there is nothing to learn; a "
                                "classifier needs at least two")
        return files, labels, classes

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from PIL import Image, UnidentifiedImageError
        from PIL.Image import DecompressionBombError

        path = self.files[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = self.size / min(image.size)
                width, height = max(self.size, round(image.width * scale)), max(self.size, round(image.height * scale))
                image = image.resize((width, height), Image.BILINEAR)
                left, top = (width - self.size) // 2, (height - self.size) // 2
                image = image.crop((left, top, left + self.size, top + self.size))
                array = np.asarray(image, dtype=np.uint8).copy()
        except DecompressionBombError as error:
            raise DataFileError(f"{path}: refused as a possible decompression bomb ({error})") from error
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:  # PIL's decoders raise all three
            raise DataFileError(f"{path}: not a readable image ({type(error).__name__}: {error})") from error
        return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0, self.labels[index]


def load_arrays(path: str | Path, test_fraction: float = 0.2, seed: int = 0):
    """(x_train, y_train, x_test, y_test) float32 / int64 from a ``.npz``; 1D x gets a channel axis."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{path}: not a readable .npz archive ({error})") from error
    keys = set(archive.files)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        x_train, y_train, x_test, y_test = (archive[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    elif {"x", "y"} <= keys:
        x, y = archive["x"], archive["y"]
        if len(x) != len(y):
            raise DataFileError(f"{path}: x has {len(x)} rows but y has {len(y)}")
        order = np.random.default_rng(seed).permutation(len(x))
        cut = max(1, round(test_fraction * len(x)))
        x_train, y_train, x_test, y_test = x[order[cut:]], y[order[cut:]], x[order[:cut]], y[order[:cut]]
    else:
        raise DataFileError(f"{path}: expected arrays x_train, y_train, x_test, y_test (or x, y); found "
                            f"{sorted(keys) or 'none'}")
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataFileError(f"{path}: x_{name} has {len(x)} rows but y_{name} has {len(y)}")
        if not len(x):
            raise DataFileError(f"{path}: x_{name} is empty")
        if x.ndim not in (2, 3, 4):
            raise DataFileError(f"{path}: x_{name} has shape {x.shape}; expected (N, L) or (N, C, L) signals, or "
                                "(N, C, H, W) images")
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise DataFileError(f"{path}: y_{name} must be a 1-D array of integer class labels, got "
                                f"{y.dtype} {y.shape}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataFileError(f"{path}: train examples have shape {x_train.shape[1:]}, test ones {x_test.shape[1:]}")
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        check_features(x, f"{path} ({name})")
    check_labels({"label": y_train}, {"label": y_test}, str(path))

    def channels(x: np.ndarray) -> np.ndarray:
        return (x[:, None] if x.ndim == 2 else x).astype(np.float32)

    return channels(x_train), y_train.astype(np.int64), channels(x_test), y_test.astype(np.int64)
