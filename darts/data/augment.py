"""Augmentation on tensors, for any number of spatial dimensions: random crop with padding, horizontal
flip, cutout, and normalisation. Randomness comes from torch's global generator (saved in checkpoints)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class Normalize:
    """(x - mean) / std per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (x.dim() - 1)
        return (x - self.mean.view(shape)) / self.std.view(shape)


class RandomCrop:
    """Pad every spatial side with ``padding`` zeros, then crop back to the original size at a random place."""

    def __init__(self, padding: int) -> None:
        self.padding = padding

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[1:]
        padded = F.pad(x, [self.padding] * (2 * len(spatial)))
        starts = [int(torch.randint(0, 2 * self.padding + 1, ())) for _ in spatial]
        return padded[(slice(None), *[slice(s, s + n) for s, n in zip(starts, spatial)])]


class RandomFlip:
    """Reverse the last spatial dimension (left-right for images, time for signals) with probability 1/2."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) if float(torch.rand(())) < 0.5 else x


class Cutout:
    """Zero a square (cube, segment) of side ``size`` centred at a random point, clipped at the borders
    (DeVries and Taylor 2017, as DARTS uses it)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        region = [slice(None)]
        for n in x.shape[1:]:
            centre = int(torch.randint(0, n, ()))
            region.append(slice(max(0, centre - self.size // 2), min(n, centre + self.size // 2)))
        x[tuple(region)] = 0
        return x


class Compose:
    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x)
        return x


def augmentation(crop_padding: int = 0, flip: bool = False, cutout: int = 0) -> Compose:
    """Crop with padding, flip, then cutout (each only when asked for), in DARTS' order."""
    return Compose([*([RandomCrop(crop_padding)] if crop_padding else []), *([RandomFlip()] if flip else []),
                    *([Cutout(cutout)] if cutout else [])])


class TransformedDataset(Dataset):
    """``base`` with ``transform`` applied to each input when it is read."""

    def __init__(self, base: Dataset, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y = self.base[index]
        return self.transform(x), y
