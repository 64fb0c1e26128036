"""Many tensors in one allocation: copies that outlive a pass without splitting the heap.

A supernet has hundreds to thousands of small weight tensors. The weight-shaped tensors that a
second-order step keeps from one pass to the next (gradients, virtual and perturbed weights), allocated one
by one amid a pass's activations, stay scattered over the memory the pass frees, and glibc's heap must grow
for the next pass's activations: P3B5 quick's second-order step peaked 0.1 GiB above the plain step with
the same tensors alive. Packed into one allocation each, they leave that memory whole.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def packed(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Detached copies of ``tensors``: views of one new allocation per dtype and device among them.

    The copying and the views are made by torch's C++ helpers (those of its distributed gradient buckets),
    3 times faster than a Python loop over the thousands of small tensors of a supernet."""
    groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for index, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(index)
    copies: list[torch.Tensor] = [None] * len(tensors)  # type: ignore[list-item]
    with torch.no_grad():
        for indices in groups.values():
            group = [tensors[i] for i in indices]
            # the helper returns a lone tensor's own values, not a copy
            flat = _flatten_dense_tensors(group) if len(group) > 1 else group[0].reshape(-1).clone()
            for index, copy in zip(indices, unpacked(flat, group)):
                copies[index] = copy
    return copies


def unpacked(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Views of the 1D ``flat`` shaped as ``like``, in order (``flat`` holds their values end to end)."""
    return list(_unflatten_dense_tensors(flat, like))
