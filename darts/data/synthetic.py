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
