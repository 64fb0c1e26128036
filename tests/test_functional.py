"""Substitution: a module run with other parameters and copied buffers, as torch.func.functional_call."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from darts.functional import Substitution


class Tied(nn.Module):
    """A linear map used twice through two modules that share its weight, and a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 4)
        self.second.weight = self.first.weight
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.norm(self.first(x))))


def test_a_substituted_pass_is_functional_calls_and_leaves_the_module_as_it_was():
    torch.manual_seed(0)
    module = Tied()
    before = copy.deepcopy(module.state_dict())
    names, parameters = zip(*module.named_parameters())  # the tied weight appears once
    stand_ins = [p.detach() * 2 + 0.1 for p in parameters]
    x = torch.randn(6, 4)
    substitution = Substitution(module, parameters)
    for _ in range(2):  # the buffers are copied afresh each pass: the second pass gives the same numbers
        with substitution(stand_ins):
            ours = module(x)
        buffers = {n: b.clone() for n, b in module.named_buffers()}
        theirs = functional_call(module, {**dict(zip(names, stand_ins)), **buffers}, (x,))
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert module.second.weight is module.first.weight and isinstance(module.first.weight, nn.Parameter)


def test_gradients_reach_the_stand_ins_and_an_error_restores_the_module():
    module = Tied()
    parameters = list(module.parameters())
    stand_ins = [p.detach().clone().requires_grad_() for p in parameters]
    substitution = Substitution(module, parameters)
    with substitution(stand_ins):
        module(torch.randn(5, 4)).sum().backward()
    assert all(s.grad is not None for s in stand_ins) and all(p.grad is None for p in parameters)
    with pytest.raises(RuntimeError, match="inside"):
        with substitution(stand_ins):
            raise RuntimeError("inside")
    assert [p for p in module.parameters()] == parameters


def test_buffers_replaced_after_construction_are_found_again():
    module = Tied()
    substitution = Substitution(module, list(module.parameters()))
    with substitution(list(module.parameters())):
        module(torch.randn(5, 4))
    module.double()  # replaces every buffer tensor
    mean = module.norm.running_mean.clone()
    with substitution(list(module.parameters())):
        module(torch.randn(5, 4, dtype=torch.double))
    assert torch.equal(module.norm.running_mean, mean) and module.norm.num_batches_tracked == 0


def test_bad_stand_ins_are_named():
    module = Tied()
    substitution = Substitution(module, list(module.parameters()))
    with pytest.raises(ValueError, match="expected 5 parameters, got 1"):
        with substitution([torch.zeros(4)]):
            pass
    with pytest.raises(ValueError, match=r"shapes \[\[3\]\] are not among the module's parameters"):
        Substitution(module, [torch.zeros(3)])
