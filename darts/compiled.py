"""What darts' numba kernels share: compilation with a cache, tensors passed by address, when they apply.

The kernels (:mod:`darts.search_space.batch_norm_kernels`, :mod:`darts_plugins.depthwise_kernels`,
:mod:`darts_plugins.pooling_kernels`) are
single-threaded CPU code for float32 tensors. They apply when numba imports, torch runs on one thread, their
switch (an environment variable) is not ``0``, and torch is not tracing, exporting or compiling (the kernels
read raw data pointers, which traced, fake and symbolic tensors lack); otherwise torch's kernels serve.
"""

from __future__ import annotations

import os

import numpy as np
import torch

try:
    from numba import carray, njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - numba is a dependency; torch's kernels serve without it
    njit = None


def enabled(switch: str) -> bool:
    """Whether kernels switched by the environment variable ``switch`` may run (on CPU float32 tensors)."""
    return (njit is not None and torch.get_num_threads() == 1 and os.environ.get(switch, "1") != "0"
            and not tracing())


def tracing() -> bool:
    """Whether torch is tracing (``torch.jit.trace``), exporting (``torch.export``, ONNX) or compiling the code
    that runs now: then only torch's own operations may run."""
    exporting = getattr(torch.compiler, "is_exporting", None)
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or bool(exporting and exporting())


def compiled(function, fastmath: bool = True):
    """``function`` compiled; fast math lets sums run in vector lanes (in any order)."""
    if njit is None:  # pragma: no cover
        return function
    options = dict(fastmath=fastmath, boundscheck=False, error_model="numpy", nogil=True)
    try:  # compiled once (seconds), then loaded from numba's cache beside the module or in the user's
        return njit(cache=True, **options)(function)
    except RuntimeError:  # pragma: no cover - no writable cache directory: compiled in every process
        return njit(**options)(function)


def compiled_in_order(function):
    """``function`` compiled without fast math: operations in the written order, NaN checks kept."""
    return compiled(function, fastmath=False)


if njit is not None:
    @intrinsic
    def _pointer(typingctx, address):
        """An integer address as a void pointer (numba's documented recipe for arrays at raw addresses)."""
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)
        return types.voidptr(address), codegen


@compiled
def floats(address, size):  # pragma: no cover - compiled
    """The ``size`` float32 values at ``address`` (a tensor's data_ptr), as an array."""
    return carray(_pointer(address), size, np.float32)
