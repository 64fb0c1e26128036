"""Dataset wrappers."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class DictTargetDataset(Dataset):
    """Inputs with several targets: item ``i`` is ``(inputs[i], {name: targets[name][i]})``."""

    def __init__(self, inputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> None:
        wrong = {name: len(t) for name, t in targets.items() if len(t) != len(inputs)}
        if wrong:
            raise ValueError(f"{len(inputs)} inputs but targets of other lengths: {wrong}")
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        return self.inputs[index], {name: t[index] for name, t in self.targets.items()}
