"""Trained networks trace and export on one thread, where darts' CPU kernels serve the eager passes: under
tracing, export and compilation only torch's operations run, and the traced program computes what eager does."""

from __future__ import annotations

import pytest
import torch

from darts import Network, SearchNetwork, load_genotype
from darts.kernels import numba_applies, tracing


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU kernels' condition
    yield
    torch.set_num_threads(threads)


NETWORKS = {
    "conv1d": lambda: (Network(load_genotype("DARTS_V2").with_family("conv1d"), 4, 8, 3, layers=5), (2, 4, 32)),
    "conv2d": lambda: (Network("DARTS_V2", 3, 8, 3, layers=5), (2, 3, 16, 16)),
    "conv1d supernet": lambda: (SearchNetwork("conv1d", 4, 4, 3, layers=3, nodes=2), (2, 4, 16)),
}


@pytest.mark.parametrize("name, how", [(name, how) for name in sorted(NETWORKS) for how in ("jit.trace", "export")
                                       if not (name.endswith("supernet") and how == "export")])
def test_networks_trace_and_export_on_one_thread(one_thread, name, how):
    torch.manual_seed(0)
    network, shape = NETWORKS[name]()
    network.eval()
    x = torch.randn(*shape)
    assert numba_applies(x)  # eager passes use the kernels here
    with torch.no_grad():
        expected = network(x)
        program = torch.jit.trace(network, x) if how == "jit.trace" else torch.export.export(network, (x,)).module()
        torch.testing.assert_close(program(x), expected, rtol=1e-5, atol=1e-5)
        other = torch.randn(*shape)  # a traced program is not a recording of one input's values
        torch.testing.assert_close(program(other), network(other), rtol=1e-5, atol=1e-5)


def test_kernels_stand_aside_while_torch_traces(one_thread):
    seen = []

    def probe(x):
        seen.append((tracing(), numba_applies(torch.ones(2, 3, 4))))
        return x * 2

    probe(torch.ones(1))
    torch.jit.trace(probe, torch.ones(1))  # traced, then run again by the trace's own check
    assert seen[0] == (False, True) and (True, False) in seen
    assert all(not kernels for traced, kernels in seen if traced)
