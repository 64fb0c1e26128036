"""Shared fixtures: a small supernet of each built-in family with a training and a validation batch."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from darts import RecurrentSearchNetwork, SearchNetwork, Supernet

FAMILIES = ("conv1d", "conv2d", "linear", "recurrent")


@dataclass
class Problem:
    network: Supernet
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]


#: PC-DARTS variants: partial channels (K=2) and edge normalisation
PC_FAMILIES = ("conv1d-pc", "conv2d-pc", "linear-pc")


#: the device of the device-parametrised tests: ``DARTS_TEST_DEVICE=cuda`` runs them on a GPU
TEST_DEVICE = os.environ.get("DARTS_TEST_DEVICE", "cpu")


def make_problem(family: str, dtype: torch.dtype = torch.float64, seed: int = 0, batch: int = 6,
                 device: str = TEST_DEVICE) -> Problem:
    """A small supernet of ``family`` (``-pc``: PC-DARTS' options on) and two batches of random data with 3
    classes, on ``device`` (``DARTS_TEST_DEVICE``, the CPU by default)."""
    torch.manual_seed(seed)
    family, pc = family.removesuffix("-pc"), family.endswith("-pc")
    if family == "recurrent":
        network: Supernet = RecurrentSearchNetwork(vocab_size=13, embedding_dim=5, hidden_size=6, num_classes=3,
                                                   nodes=3)
        inputs = [torch.randint(0, 13, (batch, 4)) for _ in range(2)]
    else:
        network = SearchNetwork(family, in_channels=3, channels=4, num_classes=3, layers=3, nodes=2,
                                partial_channels=2 if pc else 1, edge_normalization=pc)
        shape = {"conv1d": (batch, 3, 8), "conv2d": (batch, 3, 6, 6), "linear": (batch, 3)}[family]
        inputs = [torch.randn(*shape, dtype=dtype) for _ in range(2)]
    network.to(dtype)
    with torch.no_grad():  # alphas away from uniform, so that the mixture is not symmetric
        for alpha in network.arch_parameters():
            alpha.normal_(0, 0.5)
    targets = [torch.randint(0, 3, (batch,)) for _ in range(2)]
    network.to(device)
    inputs, targets = [t.to(device) for t in inputs], [t.to(device) for t in targets]
    return Problem(network, (inputs[0], targets[0]), (inputs[1], targets[1]))


@pytest.fixture(params=FAMILIES)
def problem(request) -> Problem:
    return make_problem(request.param)


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output, target)


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Every test starts from the same random state, whatever ran before it."""
    torch.manual_seed(0)


@pytest.fixture
def numba_off(monkeypatch):
    """As if numba were not installed: the numba kernels stand aside, darts' other CPU machinery (the lean
    autograd nodes, the oneDNN rewrites) stays."""
    from darts import compiled

    monkeypatch.setattr(compiled, "njit", None)


@pytest.fixture
def plain_family():
    """A BN-free linear family (tests.test_distributed), registered in a throw-away registry of this process."""
    from darts.plugins import isolated_plugins
    from tests.test_distributed import _register_plain

    with isolated_plugins():
        _register_plain()
        yield
