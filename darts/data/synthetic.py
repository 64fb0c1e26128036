"""Generated data sets, so that searches run with no files and no downloads."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def motif_sequences(samples: int, length: int = 64, channels: int = 4, num_classes: int = 4, motif_length: int = 7,
                    noise: float = 1.0, seed: int = 0) -> TensorDataset:
    """Multichannel sequences whose class is a motif hidden at a random position in noise.

    Each class has its own random motif; a sequence holds its class's motif once, at a random offset, plus
    a weaker motif of another class as a distractor, so that a model must find and weigh local patterns
    (what convolutions and pooling are for). Returns (inputs (samples, channels, length), labels).
    """
    if length < motif_length:
        raise ValueError(f"length ({length}) must be at least motif_length ({motif_length})")
    generator = torch.Generator().manual_seed(seed)
    motifs = torch.randn(num_classes, channels, motif_length, generator=generator) * 1.5
    labels = torch.randint(0, num_classes, (samples,), generator=generator)
    inputs = noise * torch.randn(samples, channels, length, generator=generator)
    positions = torch.randint(0, length - motif_length + 1, (samples, 2), generator=generator)
    distractors = (labels + torch.randint(1, num_classes, (samples,), generator=generator)) % num_classes
    for i in range(samples):
        start, other = int(positions[i, 0]), int(positions[i, 1])
        inputs[i, :, start:start + motif_length] += motifs[labels[i]]
        inputs[i, :, other:other + motif_length] += 0.5 * motifs[distractors[i]]
    return TensorDataset(inputs, labels)


def tabular_tasks(samples: int, features: int = 32, classes: int = 3, noise: float = 0.3,
                  seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Feature vectors with two targets: ``group`` (a class) and ``response`` (a real number).

    Both depend non-linearly on a few random directions of the features: ``group`` is the argmax of
    ``classes`` tanh-squashed projections plus noise, ``response`` a sum of sines and a product of two
    projections plus noise. Returns (inputs (samples, features), {"group": long, "response": float}).
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, features, generator=generator)
    directions = torch.randn(features, classes + 2, generator=generator) / features ** 0.5
    projections = inputs @ directions
    scores = torch.tanh(2 * projections[:, :classes]) + noise * torch.randn(samples, classes, generator=generator)
    response = torch.sin(2 * projections[:, classes]) + projections[:, classes] * projections[:, classes + 1]
    response = response + noise * torch.randn(samples, generator=generator)
    return inputs, {"group": scores.argmax(1), "response": response}


def keyword_sequences(samples: int, length: int = 12, vocab_size: int = 32, num_classes: int = 3,
                      seed: int = 0) -> TensorDataset:
    """Token sequences whose class is the keyword they contain, at a random position among filler tokens.

    Tokens ``1..num_classes`` are the keywords, the others fillers (0 is left for padding). A sequence
    holds its class's keyword once, so a recurrent cell must carry it to the end of the sequence.
    """
    if vocab_size <= num_classes + 1:
        raise ValueError(f"vocab_size ({vocab_size}) must exceed num_classes + 1 ({num_classes + 1})")
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (samples,), generator=generator)
    tokens = torch.randint(num_classes + 1, vocab_size, (samples, length), generator=generator)
    positions = torch.randint(0, length, (samples,), generator=generator)
    tokens[torch.arange(samples), positions] = labels + 1
    return TensorDataset(tokens, labels)
