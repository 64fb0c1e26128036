"""Image and signal tasks on files users have: CIFAR python batches, class folders of images, ``.npz`` arrays.

Without ``data.path`` these tasks can still describe their inputs (``darts summary`` on the CIFAR and
ImageNet recipes), but not train.
"""

from __future__ import annotations

import zipfile

import numpy as np
import torch
from pydantic import Field
from torch.utils.data import Subset, TensorDataset

from darts.data.augment import Normalize, TransformedDataset, augmentation
from darts.data.documents import DataFileError, reindex_labels
from darts.data.images import ImageFolder, load_arrays, load_cifar
from darts.data.tables import standardize
from darts.tasks import Target, Task, TaskData, TaskOptions, register_task

CIFAR_MEAN, CIFAR_STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class AugmentOptions(TaskOptions):
    crop_padding: int = Field(0, ge=0, description="random crop after this much zero padding (training data)")
    flip: bool = Field(False, description="random horizontal flip (time reversal for signals) of training data")


def _shape_only(shape: tuple[int, ...], classes: int, name: str) -> TaskData:
    """A stand-in with one blank example: enough for shapes and sizes, refused by anything that trains."""
    blank = TensorDataset(torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long))
    return TaskData(blank, blank, (Target(name, classes=classes),), in_channels=shape[0])


def _needs_path(task: str, what: str) -> ValueError:
    return ValueError(f"task {task!r} reads your files: set data.path ({what})")


@register_task
class Cifar(Task):
    name, family = "cifar", "conv2d"
    description = "CIFAR-10 or CIFAR-100 from the python batches folder you have (no download)"

    class Options(AugmentOptions):
        path: str | None = Field(None, description="the cifar-10-batches-py or cifar-100-python folder")
        classes: int = Field(10, ge=2, description="classes, for summaries without data.path (10 or 100)")
        crop_padding: int = Field(4, ge=0, description="random crop after this much zero padding (training data)")
        flip: bool = Field(True, description="random horizontal flip of training data")

    def load(self, options: Options, seed: int) -> TaskData:
        if options.path is None:
            raise _needs_path(self.name, "the extracted cifar-10-batches-py or cifar-100-python folder")
        x_train, y_train, x_test, y_test, names = load_cifar(options.path)
        normalize = Normalize(CIFAR_MEAN, CIFAR_STD)
        to_float = lambda x: normalize(torch.from_numpy(x).float().div_(255).transpose(0, 1)).transpose(0, 1)  # noqa: E731
        return TaskData(TensorDataset(to_float(x_train), torch.from_numpy(y_train)),
                        TensorDataset(to_float(x_test), torch.from_numpy(y_test)),
                        (Target("label", classes=len(names)),), in_channels=3,
                        augment=augmentation(options.crop_padding, options.flip),
                        artifacts={"labels.json": {"classes": names}})

    def spec(self, options: Options, seed: int) -> TaskData:
        return self.load(options, seed) if options.path else _shape_only((3, 32, 32), options.classes, "label")


@register_task
class ImageFolderTask(Task):
    name, family = "image_folder", "conv2d"
    description = "images in class folders (e.g. ImageNet's train/ and val/), read with Pillow"

    class Options(AugmentOptions):
        path: str | None = Field(None, description="root/<class>/... or root/train/<class>/... with root/val|test")
        image_size: int = Field(224, ge=8, description="images are resized (shorter side) and centre-cropped to it")
        test_fraction: float = Field(0.2, gt=0, lt=1, description="held out when there is no val/ or test/ folder")
        classes: int = Field(1000, ge=2, description="classes, for summaries without data.path")
        flip: bool = Field(True, description="random horizontal flip of training data")

    def load(self, options: Options, seed: int) -> TaskData:
        from pathlib import Path

        if options.path is None:
            raise _needs_path(self.name, "a folder of class folders")
        root = Path(options.path)
        test_root = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
        if (root / "train").is_dir() and test_root is not None:
            files, labels, classes = ImageFolder.scan(root / "train")
            test_files, test_labels, test_classes = ImageFolder.scan(test_root)
            if test_classes != classes:
                from darts.data import DataFileError

                raise DataFileError(f"{test_root}: class folders differ from {root / 'train'}'s: "
                                    f"{sorted(set(test_classes) ^ set(classes))[:5]}")
            train, test = ImageFolder(files, labels, options.image_size), ImageFolder(test_files, test_labels,
                                                                                        options.image_size)
        else:
            files, labels, classes = ImageFolder.scan(root)
            everything = ImageFolder(files, labels, options.image_size)
            order = np.random.default_rng(seed).permutation(len(files))
            cut = max(1, round(options.test_fraction * len(files)))
            train, test = Subset(everything, order[cut:].tolist()), Subset(everything, order[:cut].tolist())
        normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        return TaskData(TransformedDataset(train, normalize), TransformedDataset(test, normalize),
                        (Target("label", classes=len(classes)),), in_channels=3,
                        augment=augmentation(options.crop_padding, options.flip),
                        artifacts={"labels.json": {"classes": classes}})

    def spec(self, options: Options, seed: int) -> TaskData:
        if options.path:
            return self.load(options, seed)
        return _shape_only((3, options.image_size, options.image_size), options.classes, "label")


@register_task
class Arrays(Task):
    name, family = "arrays", "conv2d"
    description = "signals (N, L) or (N, C, L) or images (N, C, H, W) with class labels, in a .npz"

    class Options(AugmentOptions):
        path: str | None = Field(None, description="the .npz with x_train, y_train, x_test, y_test (or x, y)")
        test_fraction: float = Field(0.2, gt=0, lt=1, description="held out when the archive has only x and y")
        normalize: bool = Field(True, description="standardise each channel (rows: each feature) with the training "
                                                  "split's statistics")
        rows: bool = Field(False, description="(N, F) arrays as rows of F features, for fully connected families "
                                              "(set when model.family has no spatial axis, e.g. linear)")

    def options_for(self, options: Options, family) -> Options:
        """Feature rows for families without a spatial axis (linear), signals and images for the others."""
        return options.model_copy(update={"rows": family.spatial_dims == 0 and family.cell == "feedforward"})

    def load(self, options: Options, seed: int) -> TaskData:
        if options.path is None:
            raise _needs_path(self.name, "a .npz archive")
        x_train, y_train, x_test, y_test = load_arrays(options.path, options.test_fraction, seed)
        labels, mapping = reindex_labels({"train": {"label": y_train}, "test": {"label": y_test}})
        classes = mapping["label"]
        if options.rows:
            if x_train.ndim != 3 or x_train.shape[1] != 1:
                raise DataFileError(f"{options.path}: a fully connected family reads (N, F) rows of features; the "
                                    f"archive holds examples of shape {x_train.shape[1:]} (use a conv family)")
            x_train, x_test = x_train[:, 0], x_test[:, 0]
            if options.normalize:
                x_train, x_test = standardize(x_train, x_test)
        x_train, x_test = torch.from_numpy(x_train), torch.from_numpy(x_test)
        if options.normalize and not options.rows:
            axes = [0, *range(2, x_train.dim())]
            mean, std = x_train.mean(axes), x_train.std(axes) + 1e-6
            normalize = Normalize(mean.tolist(), std.tolist())
            x_train = torch.stack([normalize(x) for x in x_train])
            x_test = torch.stack([normalize(x) for x in x_test])
        return TaskData(TensorDataset(x_train, torch.from_numpy(labels["train"]["label"])),
                        TensorDataset(x_test, torch.from_numpy(labels["test"]["label"])),
                        (Target("label", classes=max(2, len(classes))),), in_channels=x_train.shape[1],
                        augment=augmentation(options.crop_padding, options.flip),
                        artifacts={"labels.json": {"classes": classes}})

    def default_family(self, options: Options) -> str:
        """conv1d for signals, conv2d for images (read from the archive's shape)."""
        if options.path is None:
            return self.family
        try:
            with np.load(options.path, allow_pickle=False) as archive:
                key = "x_train" if "x_train" in archive.files else "x"
                return "conv1d" if archive[key].ndim in (2, 3) else "conv2d"
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return self.family  # the loader reports the problem when the data is read
