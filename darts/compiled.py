"""What darts' numba kernels share: compilation with a cache, tensors passed by address, when they apply.

The kernels (:mod:`darts.search_space.batch_norm_kernels`, :mod:`darts_plugins.depthwise_kernels`,
:mod:`darts_plugins.pooling_kernels`) are
single-threaded CPU code for float32 tensors. Whether they apply is decided by the kernel seam,
:func:`darts.kernels.numba_applies` (numba importable, ``DARTS_KERNELS`` not ``torch``, no autocast, and torch
not tracing, exporting or compiling: the kernels read raw data pointers, which traced, fake and symbolic tensors
lack); otherwise torch's kernels serve.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import carray, njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - numba is a dependency; torch's kernels serve without it
    njit = None


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
