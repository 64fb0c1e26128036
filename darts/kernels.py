"""The kernel seam: the one place that decides whether darts' own CPU machinery computes, or torch's operations.

darts' speed machinery is written for float32 tensors on the CPU:
- autograd nodes that keep less for the backward pass (separable convolutions, poolings, the weighted
  BatchNorm of a mixed op, FactorizedReduce's sub-grids);
- oneDNN-specific rewrites (dilated depthwise gradients by sub-grids and column pieces; 1-wide convolutions
  of sequences as batched matrix products);
- numba kernels (sequence convolutions and poolings, batch norm), single-threaded, which also need numba;
- glibc's heap kept from shrinking between steps (:mod:`darts.allocator`).

All of it applies only where :func:`applies` says so: ``DARTS_KERNELS`` is ``auto`` (the default), every
tensor is a float32 or float64 CPU tensor (float64 so that the tests of exact mathematics run the same code),
autocast is off and torch is not tracing, exporting or compiling; the numba kernels also need float32 and
numba (:func:`numba_applies`), at any thread count. Elsewhere (a GPU, bf16 or fp16, ``torch.jit.trace``,
``torch.export``, ONNX, ``torch.compile``) the named operations compute the same mathematics with torch's own
differentiable operations, so cuDNN serves on a GPU and exported graphs hold torch operations only.
``DARTS_KERNELS=torch`` switches the machinery off everywhere, e.g. to compare: every result is the same to
float tolerance.
"""

from __future__ import annotations

import functools
import os

import torch

#: the environment variable that chooses the kernels
ENVIRONMENT = "DARTS_KERNELS"
MODES = ("auto", "torch")
_FULL_PRECISION = (torch.float32, torch.float64)
_IS_EXPORTING = getattr(torch.compiler, "is_exporting", None)  # torch 2.13 has it; older versions may not


def mode() -> str:
    """``auto`` (darts' CPU machinery where it applies) or ``torch`` (torch's operations everywhere)."""
    return _parse_mode(os.environ.get(ENVIRONMENT))


@functools.lru_cache(maxsize=8)
def _parse_mode(raw: str | None) -> str:
    value = (raw or "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENVIRONMENT}={value!r} is not a kernel mode; use one of {', '.join(MODES)}")
    return value


def tracing() -> bool:
    """Whether torch is tracing (``torch.jit.trace``), exporting (``torch.export``, ONNX) or compiling the code
    that runs now: then only torch's own operations may run."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or bool(_IS_EXPORTING and _IS_EXPORTING())


def applies(*tensors: torch.Tensor) -> bool:
    """Whether darts' CPU machinery computes an operation on ``tensors`` (see the module)."""
    for tensor in tensors:  # a loop, not all(...): this runs for every operation of every pass
        if tensor.dtype not in _FULL_PRECISION or not tensor.is_cpu:
            return False
    return not torch.is_autocast_enabled("cpu") and not tracing() and mode() == "auto"


def numba_applies(*tensors: torch.Tensor) -> bool:
    """Whether the numba kernels compute on ``tensors``: :func:`applies`, float32, numba importable.

    At any thread count: the kernels run on one thread, but with torch's operations around them on two
    threads, a second-order search step took 0.84 s on p3b5-quick and 3.34 s on cnn-c8 with them, against
    1.08 and 4.61 s with torch's operations in their place (one thread, all of darts' machinery: 0.90 and
    4.27 s)."""
    from darts import compiled

    return compiled.njit is not None and all(t.dtype == torch.float32 for t in tensors) and applies(*tensors)
