"""Dataset wrappers."""

from __future__ import annotations

from typing import Sequence

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


def split_labels(split: Dataset, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The targets of every item of ``split``, per target name (a single-target split under ``names[0]``),
    read without loading the inputs where the dataset keeps its targets apart (tensors, subsets, wrappers,
    image folders' label lists); otherwise item by item."""
    targets = _targets(split)
    if targets is None:
        rows = [split[i][1] for i in range(len(split))]
        return {name: torch.stack([torch.as_tensor(y[name] if isinstance(y, dict) else y) for y in rows])
                for name in names}
    return targets if isinstance(targets, dict) else {names[0]: targets}


def _targets(split: Dataset) -> torch.Tensor | dict[str, torch.Tensor] | None:
    from torch.utils.data import Subset, TensorDataset

    if isinstance(split, Subset):
        inner = _targets(split.dataset)
        index = torch.as_tensor(list(split.indices), dtype=torch.long)
        if isinstance(inner, dict):
            return {name: t[index] for name, t in inner.items()}
        return None if inner is None else inner[index]
    if isinstance(split, TensorDataset) and len(split.tensors) == 2:
        return split.tensors[1]
    if isinstance(split, DictTargetDataset):
        return split.targets
    if hasattr(split, "base"):  # a transformed view: the transform touches inputs only
        return _targets(split.base)
    labels = getattr(split, "labels", None)
    if isinstance(labels, (list, tuple)) and len(labels) == len(split):
        return torch.as_tensor(labels)
    return None
