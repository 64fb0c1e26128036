"""The P3B5 task: multi-task classification of clinical-report token sequences (CANDLE Pilot 3 Benchmark 5).

Three sources: ``synthetic`` (generated reports with the P3B3 shapes and class counts, the default: no
files needed), ``p3b3`` (a folder of CANDLE's ``train_X.npy``, ``train_Y.npy``, ``test_X.npy``,
``test_Y.npy``) and ``text`` (a CSV or TSV of raw text with a label column per task).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from darts.data import DictTargetDataset
from darts.data.documents import Documents, load_p3b3, load_text_table
from darts.data.reports import CLASSES, TASKS, clinical_reports
from darts.tasks import Target, Task, TaskData, TaskOptions, register_task


@register_task
class P3B5(Task):
    name, family = "p3b5", "conv1d"
    description = "clinical-report token sequences, four tasks at once (subsite, laterality, behavior, grade)"

    class Options(TaskOptions):
        source: Literal["synthetic", "p3b3", "text"] = Field(
            "synthetic", description="generated reports, a folder of P3B3 .npy files, or a CSV/TSV of text")
        path: str | None = Field(None, description="p3b3: the folder of .npy files; text: the training table")
        test_path: str | None = Field(None, description="text: a separate test table; null: split off test_fraction")
        test_fraction: float = Field(0.2, gt=0, lt=1, description="text: fraction of rows held out for testing")
        text_column: str = Field("text", description="text: the column holding the report text")
        tasks: list[str] | None = Field(None, description="task names: text, the label columns (required); p3b3, "
                                                           "names of the Y columns (default: CANDLE's four)")
        sequence_length: int | None = Field(None, ge=1, description="tokens per document (pad or truncate); null: "
                                                                     "the files' length (p3b3), 512 (text), 1500")
        vocab_size: int | None = Field(None, ge=2, description="p3b3: null takes it from the data; text: the "
                                                               "largest vocabulary kept; synthetic: null is 5000")
        min_count: int = Field(1, ge=1, description="text: a word enters the vocabulary after this many uses")
        documents: int = Field(2000, ge=2, description="synthetic: training documents")
        test_documents: int = Field(500, ge=1, description="synthetic: test documents")
        noise: float = Field(0.05, ge=0, le=1, description="synthetic: fraction of labels replaced at random")

    def load(self, options: Options, seed: int) -> TaskData:
        documents = self.documents(options, seed)
        targets = tuple(Target(task, classes=max(2, count)) for task, count in documents.classes.items())

        def dataset(tokens, labels):
            return DictTargetDataset(torch.from_numpy(tokens), {t: torch.from_numpy(v) for t, v in labels.items()})

        return TaskData(dataset(documents.train_tokens, documents.train_labels),
                        dataset(documents.test_tokens, documents.test_labels), targets, multi_task=True,
                        vocab_size=documents.vocab_size, artifacts=documents.artifacts)

    @staticmethod
    def documents(options: Options, seed: int) -> Documents:
        if options.source == "synthetic":
            length, vocab = options.sequence_length or 1500, options.vocab_size or 5000
            tokens, labels = clinical_reports(options.documents + options.test_documents, length, vocab,
                                              options.noise, seed)
            cut = options.documents
            split = {"train": {t: labels[:cut, i] for i, t in enumerate(TASKS)},
                     "test": {t: labels[cut:, i] for i, t in enumerate(TASKS)}}
            return Documents(tokens[:cut], split["train"], tokens[cut:], split["test"], vocab,
                             dict(zip(TASKS, CLASSES)))
        if options.path is None:
            raise ValueError(f"data.source {options.source!r} reads your files: set data.path (the "
                             + ("folder of train_X.npy, train_Y.npy, test_X.npy, test_Y.npy)" if options.source == "p3b3"
                                else "CSV or TSV training table)"))
        if options.source == "p3b3":
            return load_p3b3(options.path, options.tasks, options.sequence_length, options.vocab_size)
        if not options.tasks:
            raise ValueError("data.source 'text' needs data.tasks: the label columns of the table, e.g. "
                             "[subsite, laterality, behavior, grade]")
        return load_text_table(options.path, options.text_column, options.tasks, options.test_path,
                               options.test_fraction, options.sequence_length or 512, options.vocab_size,
                               options.min_count, seed)
