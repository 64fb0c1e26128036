"""The ``ptb`` task: word-level language modelling on a PTB-style corpus (DARTS' recurrent search, paper
section 3.1.2), or on a generated corpus that needs no files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field

from darts.data.corpus import corpus_from_lines, generated_corpus, read_corpus
from darts.tasks import Task, TaskOptions, register_task

if TYPE_CHECKING:
    from darts.recipes import Recipe

#: the vocabulary of Mikolov's Penn Treebank, for ``darts summary`` without the files
PTB_VOCABULARY = 10_000


@dataclass
class CorpusData:
    """A language-modelling task's data: three token streams (1-D int64) and the vocabulary size."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab_size: int
    artifacts: dict[str, Any] = field(default_factory=dict)

    def example_input(self, batch: int = 1, length: int = 35) -> torch.Tensor:
        """A (batch, length) window of token ids, for summaries and multiply-add counts."""
        return torch.zeros(batch, length, dtype=torch.int64)

    def recipe(self) -> "Recipe":
        """How a corpus is searched, trained and tested: :class:`~darts.recipes.language_model.LanguageModelRecipe`."""
        from darts.recipes.language_model import LanguageModelRecipe

        return LanguageModelRecipe(self)


@register_task
class PennTreebank(Task):
    name, family = "ptb", "recurrent"
    description = ("word-level language modelling: a PTB-style folder (train.txt, valid.txt, test.txt) or a "
                   "generated English-like corpus")

    class Options(TaskOptions):
        source: Literal["synthetic", "files"] = Field(
            "synthetic", description="a generated corpus, or your PTB-style folder (data.path)")
        path: str | None = Field(None, description="files: the folder of train.txt, valid.txt and test.txt")
        vocab_size: int = Field(500, ge=40, description="synthetic: about this many distinct words")
        train_sentences: int = Field(3000, ge=10, description="synthetic: training sentences")
        valid_sentences: int = Field(300, ge=10, description="synthetic: validation sentences")
        test_sentences: int = Field(300, ge=10, description="synthetic: test sentences")

    def load(self, options: Options, seed: int) -> CorpusData:
        if options.source == "files":
            if options.path is None:
                raise ValueError("data.source 'files' reads your corpus: set data.path to a folder of train.txt, "
                                 "valid.txt and test.txt (PTB format: one sentence a line)")
            corpus = read_corpus(options.path)
        else:
            corpus = corpus_from_lines(generated_corpus(
                {"train": options.train_sentences, "valid": options.valid_sentences,
                 "test": options.test_sentences}, options.vocab_size, seed))
        return CorpusData(corpus.train, corpus.valid, corpus.test, corpus.vocab_size,
                          {"vocabulary.json": {"words": corpus.words, "unknown_tokens": corpus.unknown}})

    def spec(self, options: Options, seed: int) -> CorpusData:
        if options.source == "files" and options.path is None:  # the published PTB's shape
            empty = torch.zeros(0, dtype=torch.int64)
            return CorpusData(empty, empty, empty, PTB_VOCABULARY)
        return self.load(options, seed)
