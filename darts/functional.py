"""Running a module with other tensors in place of its parameters and buffers, cheaply.

``torch.func.functional_call`` does this for any names at every call: on a supernet with 900 weight tensors
and 1,800 buffers, with the buffers' copies, about 70 ms a call against 10 ms here. :class:`Substitution`
finds, once, every slot (module dictionary and key) holding each parameter and buffer, aliases included,
so that a pass writes and restores one dictionary entry per slot. Buffers are replaced by copies made with
one ``torch._foreach_clone`` per pass (new ones each pass, as an earlier pass's graph may still read its
own), so that whatever a pass writes into them (BatchNorm's running statistics) never reaches the module.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from darts.packing import packed


class Substitution:
    """Runs ``module`` with stand-ins for ``parameters`` (tensors of the module, in that order) and with
    copies of all its buffers: ``with substitution(tensors): module(x)``."""

    def __init__(self, module: nn.Module, parameters: Sequence[torch.Tensor]) -> None:
        self.module = module
        self._parameter_slots = self._slots("_parameters", parameters)
        self._buffers: list[torch.Tensor] = []
        self._buffer_slots: list[list[tuple[dict, str]]] = []

    def _slots(self, kind: str, tensors: Sequence[torch.Tensor]) -> list[list[tuple[dict, str]]]:
        """Every (dictionary, key) of the module's ``kind`` (``_parameters`` or ``_buffers``) holding each tensor."""
        index: dict[int, list[tuple[dict, str]]] = {}
        for module in self.module.modules():
            dictionary = getattr(module, kind)
            for key, value in dictionary.items():
                if value is not None:
                    index.setdefault(id(value), []).append((dictionary, key))
        missing = [list(t.shape) for t in tensors if id(t) not in index]
        if missing:
            raise ValueError(f"tensors of shapes {missing} are not among the module's {kind[1:]}")
        return [index[id(t)] for t in tensors]

    def _copy_buffers(self) -> list[torch.Tensor]:
        """Copies of the buffers; found again first if a slot holds another tensor (``module.to()`` replaces
        them). A buffer registered after the first pass is not seen."""
        stale = not self._buffer_slots
        for slots, buffer in zip(self._buffer_slots, self._buffers):
            if any(dictionary.get(key) is not buffer for dictionary, key in slots):
                stale = True
                break
        if stale:
            self._buffers = list(self.module.buffers())
            self._buffer_slots = self._slots("_buffers", self._buffers)
        return packed(self._buffers)

    @contextmanager
    def __call__(self, parameters: Sequence[torch.Tensor]) -> Iterator[None]:
        """Within the block, the module computes with ``parameters`` and fresh copies of its buffers."""
        if len(parameters) != len(self._parameter_slots):
            raise ValueError(f"expected {len(self._parameter_slots)} parameters, got {len(parameters)}")
        copies = self._copy_buffers()
        replaced = []
        try:
            for slots, tensor in zip(self._parameter_slots + self._buffer_slots, list(parameters) + copies):
                for dictionary, key in slots:
                    replaced.append((dictionary, key, dictionary[key]))
                    dictionary[key] = tensor
            yield
        finally:
            for dictionary, key, original in reversed(replaced):
                dictionary[key] = original
