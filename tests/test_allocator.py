"""Keeping freed memory: a process that frees and allocates again the memory of a pass faults no pages in
again once glibc keeps what is freed."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from darts.allocator import keep_freed_memory_unless_disabled

PASSES = textwrap.dedent("""
    import resource, sys
    import torch
    from darts.allocator import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()

    def one_pass():  # 48 activations of 1 MiB, freed together, as a pass's backward frees them
        kept = [torch.ones(2**18) for _ in range(48)]
        return sum(float(t[0]) for t in kept)

    one_pass()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        one_pass()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def faults_in_five_passes(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
@pytest.mark.slow
def test_kept_memory_is_not_faulted_in_again():
    # 5 passes x 48 MiB touch 61,440 pages: kept, under a tenth of them fault again; glibc's default returns
    # some of them to the system (a fifth to two fifths, measured) and faults them in again
    pages = 5 * 48 * 2**20 // 4096
    kept, default = faults_in_five_passes("keep"), faults_in_five_passes("default")
    assert kept < pages / 10 < default and default > 3 * kept


def test_the_environment_turns_it_off(monkeypatch):
    monkeypatch.setenv("DARTS_KERNELS", "torch")
    assert keep_freed_memory_unless_disabled() is False
