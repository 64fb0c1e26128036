"""Generated pathology-report token sequences with the shapes of CANDLE's P3B3 files.

Each document is a run of filler tokens (a Zipf-like background vocabulary) followed by padding (0); the
four labels are written into it as token patterns at random positions, some easy and some hard:

- **subsite** (15 classes, skewed frequencies): a two-token phrase of the class, once or twice. One
  document in three also holds the *first* token of another class's phrase alone, so a model must read
  the pair, not the single token.
- **laterality** (3): a single keyword for left or right, once or twice; class 2 (not stated) has none.
- **behavior** (3): the keyword ``invasive`` means class 1, unless a negation token stands 1 to 4 tokens
  before it (class 0, in situ); class 2 (benign) has a keyword of its own. The negation makes a wider
  receptive field pay (dilated or larger kernels).
- **grade** (3): the token ``grade`` followed, one or two tokens later, by a number token of the class;
  stray number tokens elsewhere are distractors.

A fraction ``noise`` of the labels of each task is replaced by a random class, so that no model is perfect.
"""

from __future__ import annotations

import numpy as np

TASKS = ("subsite", "laterality", "behavior", "grade")
CLASSES = (15, 3, 3, 3)
RESERVED = 64  # token ids 1..63 are keywords, the rest filler


def clinical_reports(documents: int, length: int = 1500, vocab_size: int = 5000, noise: float = 0.05,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``documents`` token sequences (documents, length) int64 and their labels (documents, 4) int64."""
    if length < 24:
        raise ValueError(f"length must be at least 24 tokens to hold every pattern, got {length}")
    if vocab_size <= RESERVED + 16:
        raise ValueError(f"vocab_size must exceed {RESERVED + 16} (keywords plus filler), got {vocab_size}")
    if not 0 <= noise <= 1:
        raise ValueError(f"noise is a fraction of labels, between 0 and 1; got {noise}")
    rng = np.random.default_rng(seed)
    keywords = iter(range(1, RESERVED))
    subsite_phrases = np.array([[next(keywords), next(keywords)] for _ in range(CLASSES[0])])
    left, right = next(keywords), next(keywords)
    invasive, benign, grade_word = next(keywords), next(keywords), next(keywords)
    negations = [next(keywords), next(keywords)]
    grade_numbers = [next(keywords), next(keywords), next(keywords)]

    subsite_p = 1.0 / np.arange(1, CLASSES[0] + 1) ** 0.8
    labels = np.stack([
        rng.choice(CLASSES[0], documents, p=subsite_p / subsite_p.sum()),
        rng.choice(3, documents, p=[0.4, 0.4, 0.2]),
        rng.choice(3, documents, p=[0.3, 0.5, 0.2]),
        rng.choice(3, documents, p=[0.35, 0.4, 0.25]),
    ], axis=1).astype(np.int64)
    filler_p = 1.0 / np.arange(1, vocab_size - RESERVED + 1) ** 1.05
    filler_p /= filler_p.sum()
    tokens = np.zeros((documents, length), dtype=np.int64)
    for d in range(documents):
        size = int(rng.integers(length // 3, length + 1))
        doc = RESERVED + rng.choice(vocab_size - RESERVED, size, p=filler_p)
        subsite, laterality, behavior, grade = labels[d]
        patterns: list[list[int]] = [list(subsite_phrases[subsite]) for _ in range(rng.integers(1, 3))]
        if rng.random() < 1 / 3:
            patterns.append([int(subsite_phrases[(subsite + rng.integers(1, CLASSES[0])) % CLASSES[0], 0])])
        if laterality < 2:
            patterns += [[(left, right)[laterality]] for _ in range(rng.integers(1, 3))]
        if behavior == 0:
            gap = list(RESERVED + rng.choice(vocab_size - RESERVED, rng.integers(0, 4), p=filler_p))
            patterns.append([int(rng.choice(negations)), *gap, invasive])
        elif behavior == 1:
            patterns.append([invasive])
        else:
            patterns.append([benign])
        gap = list(RESERVED + rng.choice(vocab_size - RESERVED, rng.integers(0, 2), p=filler_p))
        patterns.append([grade_word, *gap, grade_numbers[grade]])
        if rng.random() < 0.5:
            patterns.append([grade_numbers[int(rng.integers(0, 3))]])
        _insert(doc, patterns, rng)
        tokens[d, :size] = doc
    for task, classes in enumerate(CLASSES):
        flip = rng.random(documents) < noise
        labels[flip, task] = rng.integers(0, classes, int(flip.sum()))
    return tokens, labels


def _insert(doc: np.ndarray, patterns: list[list[int]], rng: np.random.Generator) -> None:
    """Write each pattern at a random place of ``doc``, in non-overlapping slots (a random order of them)."""
    slot = len(doc) // len(patterns)
    for index, position in enumerate(rng.permutation(len(patterns))):
        pattern = patterns[index]
        start = position * slot + int(rng.integers(0, max(1, slot - len(pattern) + 1)))
        doc[start:start + len(pattern)] = pattern[:len(doc) - start]
