"""The built-in tasks, one per built-in family; all run with no files and no downloads."""

from __future__ import annotations

import torch
from pydantic import Field, field_validator
from torch.utils.data import Subset, TensorDataset

from darts.data import DictTargetDataset, keyword_sequences, motif_sequences, tabular_tasks
from darts.tasks import Target, Task, TaskData, TaskOptions, register_task


def _split(dataset, train: int, test: int) -> tuple[Subset, Subset]:
    return Subset(dataset, range(train)), Subset(dataset, range(train, train + test))


@register_task
class Motifs(Task):
    name, family = "motifs", "conv1d"
    description = "generated multichannel sequences; the class is a motif hidden at a random position"

    class Options(TaskOptions):
        samples: int = Field(1024, ge=4, description="training sequences")
        test_samples: int = Field(512, ge=1, description="test sequences")
        length: int = Field(64, ge=8, description="sequence length")
        channels: int = Field(4, ge=1, description="input channels")
        classes: int = Field(4, ge=2, description="classes")
        noise: float = Field(1.0, ge=0, description="noise standard deviation")

    def load(self, options: Options, seed: int) -> TaskData:
        data = motif_sequences(options.samples + options.test_samples, options.length, options.channels,
                               options.classes, noise=options.noise, seed=seed)
        train, test = _split(data, options.samples, options.test_samples)
        return TaskData(train, test, (Target("label", classes=options.classes),), in_channels=options.channels)


@register_task
class Digits(Task):
    name, family = "digits", "conv2d"
    description = "scikit-learn's bundled handwritten digits: 1,797 8x8 grey images, 10 classes"

    class Options(TaskOptions):
        test_fraction: float = Field(0.25, gt=0, lt=1, description="fraction held out as the test split")

    def load(self, options: Options, seed: int) -> TaskData:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        images, labels = load_digits(return_X_y=True)
        images = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        images = (images - images.mean()) / images.std()
        labels = torch.tensor(labels)
        train_index, test_index = train_test_split(range(len(labels)), test_size=options.test_fraction,
                                                   random_state=seed, stratify=labels.numpy())
        data = TensorDataset(images, labels)
        return TaskData(Subset(data, train_index), Subset(data, test_index), (Target("digit", classes=10),),
                        in_channels=1)


@register_task
class Tabular(Task):
    name, family = "tabular", "linear"
    description = "generated feature vectors with two targets: a 3-class group and a real-valued response"

    class Options(TaskOptions):
        samples: int = Field(2048, ge=4, description="training rows")
        test_samples: int = Field(512, ge=1, description="test rows")
        features: int = Field(32, ge=2, description="features per row")
        noise: float = Field(0.3, ge=0, description="noise standard deviation")

    def load(self, options: Options, seed: int) -> TaskData:
        inputs, targets = tabular_tasks(options.samples + options.test_samples, options.features,
                                        noise=options.noise, seed=seed)
        data = DictTargetDataset(inputs, targets)
        train, test = _split(data, options.samples, options.test_samples)
        return TaskData(train, test, (Target("group", classes=3), Target("response", "regression")),
                        multi_task=True, in_channels=options.features)


@register_task
class Keywords(Task):
    name, family = "keywords", "recurrent"
    description = "generated token sequences; the class is the keyword a sequence contains"

    class Options(TaskOptions):
        samples: int = Field(1024, ge=4, description="training sequences")
        test_samples: int = Field(512, ge=1, description="test sequences")
        length: int = Field(12, ge=2, description="tokens per sequence")
        vocab_size: int = Field(32, ge=5, description="vocabulary size")
        classes: int = Field(3, ge=2, description="classes (keywords)")

    def load(self, options: Options, seed: int) -> TaskData:
        data = keyword_sequences(options.samples + options.test_samples, options.length, options.vocab_size,
                                 options.classes, seed=seed)
        train, test = _split(data, options.samples, options.test_samples)
        return TaskData(train, test, (Target("label", classes=options.classes),), vocab_size=options.vocab_size)


@register_task
class Planted(Task):
    name, family = "planted", "conv1d"
    description = "Gaussian sequences labelled by a fixed random teacher network of a known genotype"

    class Options(TaskOptions):
        samples: int = Field(2048, ge=4, description="training sequences")
        test_samples: int = Field(1024, ge=1, description="test sequences")
        length: int = Field(32, ge=8, description="sequence length")
        channels: int = Field(4, ge=1, description="input channels")
        classes: int = Field(4, ge=0, description="classes: the teacher's output cut at its quantiles; 0: the "
                                                  "output itself, standardised, as a regression target")
        teacher_channels: int = Field(8, ge=2, description="the teacher's initial channels")
        teacher_seed: int = Field(0, description="the teacher's weights (the run seed draws the sequences)")
        teacher: list[tuple[str, int]] | None = Field(
            None, description="the teacher's cell as [[primitive, input], ...], two genes a node, every node "
                              "concatenated, e.g. [[dil_conv_5, 0], [max_pool_3, 1]] for one node; null: the "
                              "planted cell of two nodes")

        @field_validator("teacher")
        @classmethod
        def _genes(cls, value):
            from darts.data.planted import check_genes

            try:
                return None if value is None else check_genes(value)
            except ValueError as error:
                raise ValueError(f"data.teacher: {error}") from None

    def load(self, options: Options, seed: int) -> TaskData:
        from darts.data.planted import planted_sequences, teacher_genotype

        teacher = teacher_genotype(options.teacher)
        data = planted_sequences(options.samples + options.test_samples, options.length, options.channels,
                                 options.classes, options.teacher_channels, options.teacher_seed, seed, teacher)
        if options.classes == 1:
            raise ValueError("data.classes is 0 (a regression target) or at least 2")
        train, test = _split(data, options.samples, options.test_samples)
        target = Target("label", classes=options.classes) if options.classes else Target("output", "regression")
        return TaskData(train, test, (target,), in_channels=options.channels,
                        artifacts={"teacher_genotype.json": teacher.to_dict()})
