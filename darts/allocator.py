"""Keep the memory a pass frees in the process, for the next pass (glibc's malloc).

PyTorch's CPU tensors come from the C library's ``malloc``. With glibc's default settings, every pass of a
search step frees tens of megabytes of activations at the top of the heap, glibc returns them to the system
(trims the heap), and the next pass faults them in again, a page at a time: about 10,000 page faults per
``cnn-c8`` plain step, and a second-order step is 10 to 15 % slower for it on a 2-core virtual machine.
:func:`keep_freed_memory` sets glibc to keep freed memory (no trimming below 2 GiB) and to serve every
allocation under 32 MiB from the heap: the peak memory stays the same (the process already reached it),
the page faults go to almost none.

The command line (``python -m darts ...``) calls it unless ``DARTS_KERNELS=torch`` (the kernel seam,
:mod:`darts.kernels`, switches all of darts' CPU machinery off); a program that
runs searches through the library calls it itself. It does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

from darts import kernels

#: mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: allocations at least this large are mapped apart (and unmapped when freed); glibc's largest
MMAP_THRESHOLD = 32 * 2**20
#: freed memory at the top of the heap is returned to the system only beyond this much (mallopt takes an int)
TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory for reuse; True if it was set (glibc only)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success; setting either turns glibc's own adjustment of both off
    mapped = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trimmed = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return mapped == 1 and trimmed == 1


def keep_freed_memory_unless_disabled() -> bool:
    """:func:`keep_freed_memory`, unless the environment sets ``DARTS_KERNELS=torch``."""
    if kernels.mode() == "torch":
        return False
    return keep_freed_memory()
