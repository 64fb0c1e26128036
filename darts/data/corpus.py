"""Word-level language-modelling corpora: the PTB format, and a generated corpus that needs no download.

The PTB format (Mikolov's preprocessing, as AWD-LSTM and DARTS read it) is a folder of ``train.txt``,
``valid.txt`` and ``test.txt``: one sentence a line, words separated by spaces; every line ends with an
``<eos>`` token. The vocabulary is the training file's words, in order of first appearance; a word of
the validation or test file that training never saw becomes ``<unk>`` (added to the vocabulary if the
training file has none; PTB's own files already use ``<unk>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from darts.data.documents import DataFileError

EOS, UNK = "<eos>", "<unk>"
SPLITS = ("train", "valid", "test")


@dataclass
class Corpus:
    """Three token streams (1-D int64 tensors) and the vocabulary (``words[id]``)."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    words: list[str]
    unknown: dict[str, int] = field(default_factory=dict)  # per split: tokens mapped to <unk>

    @property
    def vocab_size(self) -> int:
        return len(self.words)


def tokenize(lines: list[str]) -> list[str]:
    """Words of ``lines``, each line followed by ``<eos>``."""
    return [word for line in lines for word in (*line.split(), EOS)]


def corpus_from_lines(splits: dict[str, list[str]]) -> Corpus:
    """A corpus from the lines of each split; the vocabulary comes from ``train``."""
    index: dict[str, int] = {}
    train_words = tokenize(splits["train"])
    for word in train_words:
        index.setdefault(word, len(index))
    streams, unknown = {}, {}
    for name in SPLITS:
        words = train_words if name == "train" else tokenize(splits[name])
        missing = sum(word not in index for word in words)
        if missing and UNK not in index:
            index[UNK] = len(index)
        unk = index.get(UNK, -1)
        streams[name] = torch.tensor([index.get(word, unk) for word in words], dtype=torch.int64)
        unknown[name] = missing
    return Corpus(streams["train"], streams["valid"], streams["test"], list(index), unknown)


def read_corpus(folder: str | Path) -> Corpus:
    """Read a PTB-style folder (``train.txt``, ``valid.txt``, ``test.txt``); errors name the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder; a PTB-style corpus is a folder of train.txt, valid.txt "
                            "and test.txt")
    splits = {}
    for name in SPLITS:
        path = folder / f"{name}.txt"
        if not path.is_file():
            present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
            raise DataFileError(f"{path}: missing; a PTB-style corpus needs train.txt, valid.txt and test.txt "
                                f"(the folder has {present})")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            line = path.read_bytes()[:error.start].count(b"\n") + 1
            raise DataFileError(f"{path}: line {line} is not UTF-8 text ({error.reason}); save the corpus as "
                                "UTF-8") from None
        lines = text.splitlines()
        if not any(line.split() for line in lines):
            raise DataFileError(f"{path}: has no words; each line of a corpus file is a sentence")
        splits[name] = lines
    return corpus_from_lines(splits)


def write_corpus(folder: str | Path, splits: dict[str, list[str]]) -> Path:
    """Write lines as a PTB-style folder (the format :func:`read_corpus` reads)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        (folder / f"{name}.txt").write_text("".join(f" {line} \n" for line in splits[name]), encoding="utf-8")
    return folder


# --- a generated corpus --------------------------------------------------------------------------------------
_DETERMINERS = {"singular": ("the", "a", "every", "this", "one"), "plural": ("the", "some", "these", "many", "two")}
_FUNCTION = ("the", "a", "every", "this", "one", "some", "these", "many", "two", "and", "but", "of", "in", "on",
             "with", "near", "to", "from")


def _pseudo_words(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct pronounceable pseudo-words (consonant-vowel syllables)."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    seen = set(_FUNCTION)
    while len(words) < count:
        syllables = rng.integers(1, 4)
        word = "".join(consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))]
                       for _ in range(syllables))
        if word not in seen and not word.endswith("s"):
            seen.add(word)
            words.append(word)
    return words


def _zipf_choice(words: list[str], rng: np.random.Generator) -> str:
    weights = 1.0 / np.arange(1, len(words) + 1)
    return words[rng.choice(len(words), p=weights / weights.sum())]


def generated_corpus(sentences: dict[str, int], vocab_size: int = 500, seed: int = 0) -> dict[str, list[str]]:
    """Lines of a small English-like language, per split (``{"train": 2000, ...}`` sentences).

    A sentence is subject, verb and optional object and adverb, sometimes joined to another by ``and`` or
    ``but``; noun phrases are a determiner, adjectives and a noun, sometimes with a prepositional phrase.
    The verb agrees in number with its subject across such a phrase (``the dog of the cats runs``), so a
    recurrent model that remembers the subject predicts better than one that looks at the last words only.
    Content words are pseudo-words with Zipf frequencies; about ``vocab_size`` distinct words in all.
    """
    if vocab_size < 40:
        raise ValueError(f"a generated corpus needs vocab_size >= 40, got {vocab_size}")
    rng = np.random.default_rng(seed)
    stems = _pseudo_words((vocab_size - len(_FUNCTION) - 8) // 2, rng)  # nouns and verbs also take an -s form
    cut_nouns, cut_verbs, cut_adjectives = (int(len(stems) * f) for f in (0.45, 0.75, 0.95))
    nouns, verbs = stems[:cut_nouns], stems[cut_nouns:cut_verbs]
    adjectives, adverbs = stems[cut_verbs:cut_adjectives], stems[cut_adjectives:]
    prepositions = ("of", "in", "on", "with", "near", "to", "from")

    def noun_phrase(plural: bool, depth: int = 0) -> list[str]:
        words = [str(rng.choice(_DETERMINERS["plural" if plural else "singular"]))]
        words += [_zipf_choice(adjectives, rng) for _ in range(rng.binomial(2, 0.3))]
        words.append(_zipf_choice(nouns, rng) + ("s" if plural else ""))
        if depth == 0 and rng.random() < 0.35:
            words += [str(rng.choice(prepositions)), *noun_phrase(bool(rng.random() < 0.5), depth + 1)]
        return words

    def clause() -> list[str]:
        plural = bool(rng.random() < 0.5)
        words = noun_phrase(plural)
        words.append(_zipf_choice(verbs, rng) + ("" if plural else "s"))
        if rng.random() < 0.6:
            words += noun_phrase(bool(rng.random() < 0.5))
        if rng.random() < 0.2:
            words.append(_zipf_choice(adverbs, rng))
        return words

    def sentence() -> str:
        words = clause()
        while rng.random() < 0.2:
            words += [str(rng.choice(("and", "but"))), *clause()]
        return " ".join(words)

    return {name: [sentence() for _ in range(count)] for name, count in sentences.items()}


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a token stream into ``batch_size`` contiguous rows (batch, length); the remainder is dropped."""
    length = len(stream) // batch_size
    if length < 2:
        raise ValueError(f"a stream of {len(stream)} tokens is too short for batch size {batch_size}: each row "
                         "needs at least 2 tokens (an input and its next word)")
    return stream[:length * batch_size].view(batch_size, length)
