"""Where a run computes and in what precision: the device, autocast, fp16's gradient scaler, batches moved.

``device``: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
Under torchrun with CUDA each rank takes ``cuda:LOCAL_RANK``. ``precision``: ``fp32``, ``bf16`` (autocast to
bfloat16, on GPUs and CPUs) or ``fp16`` (autocast to float16 with a gradient scaler). Autocast covers every
forward pass, the weights' and the architecture's; the weights, their gradients, the virtual step and the
finite difference stay in float32.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import Any, ContextManager

import torch

#: what ``device`` accepts
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def found() -> str:
    """The devices torch can use here, in words (for error messages)."""
    seen = ["cpu"]
    if torch.cuda.is_available():
        seen.append(f"{torch.cuda.device_count()} CUDA device(s): " + ", ".join(
            f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        seen.append("mps")
    build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a build without CUDA")
    return f"{'; '.join(seen)} ({build})"


def resolve(spec: str = "auto") -> torch.device:
    """The device ``spec`` names, checked against what this machine has (a clear ValueError otherwise).

    Under torchrun (``LOCAL_RANK`` set), ``auto`` and ``cuda`` take this rank's GPU, ``cuda:LOCAL_RANK``."""
    if not DEVICE_PATTERN.match(spec):
        raise ValueError(f"device {spec!r} is not one of auto, cpu, cuda, cuda:N, mps")
    local_rank = os.environ.get("LOCAL_RANK")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(f"device 'mps' asked for, but Apple's MPS is not available; found {found()}")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but torch sees no CUDA GPU; found {found()}. Use --device cpu, "
                         "or install a CUDA build of torch (see the README)")
    index = int(spec.split(":")[1]) if ":" in spec else int(local_rank or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"device cuda:{index} asked for, but there are {torch.cuda.device_count()} CUDA "
                         f"device(s); found {found()}")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors, or tuples, lists and dicts of them) on ``device``; tensors already there are kept."""
    from torch.utils._pytree import tree_map

    non_blocking = device.type == "cuda"
    return tree_map(lambda t: t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t, batch)


@dataclass(frozen=True)
class Precision:
    """A run's compute precision on ``device``: its autocast context and, for fp16, a gradient scaler."""

    name: str = "fp32"
    device: torch.device = torch.device("cpu")

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"precision {self.name!r} is not one of {', '.join(PRECISIONS)}")

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES.get(self.name, torch.float32)

    def autocast(self) -> ContextManager:
        """The context every forward pass (and its loss) runs in: autocast to bf16 or fp16, or nothing."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> "torch.amp.GradScaler | None":
        """fp16's gradient scaler (losses scaled up so that small gradients survive float16), else None."""
        return torch.amp.GradScaler(self.device.type) if self.name == "fp16" else None


FP32 = Precision()
