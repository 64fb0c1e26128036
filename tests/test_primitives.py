"""Registry-driven contract of every registered primitive of every family (in the manner of timm's tests).

The parametrisation is read from the registry at collection time, so a primitive added by any plugin,
including the one this module registers in-process, is tested without a line of test code.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from darts import get_registry, register_primitive


class ShuffledPointwise(nn.Module):
    """A user primitive: pointwise convolution at the stride, then the channels rolled by one."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(self.conv(x), shifts=1, dims=1)


# registered in-process by this test, with a factory that takes no ``affine`` argument
register_primitive("conv1d", "test_shuffled_pointwise", plugin="tests.in_process")(ShuffledPointwise)


REGISTERED = [pytest.param(family.name, primitive.name, id=f"{family.name}/{primitive.name}")
              for family, primitive, _ in get_registry()]
STRIDES = [1, 2]


def test_the_in_process_primitive_is_in_the_parametrisation():
    assert ("conv1d", "test_shuffled_pointwise") in {tuple(p.values) for p in REGISTERED}
    assert get_registry().primitive_plugin("conv1d", "test_shuffled_pointwise").name == "tests.in_process"


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("family_name, name", REGISTERED)
def test_output_shape(family_name, name, stride):
    registry = get_registry()
    family, primitive = registry.family(family_name), registry.primitive(family_name, name)
    for affine in (True, False):
        for channels, size in ((4, 8), (6, 7)):  # odd sizes too: sequence lengths are rarely powers of two
            op = primitive.build(channels, stride, affine=affine)
            x = family.example_input(3, channels, size=size)
            assert tuple(op(x).shape) == family.output_shape(x.shape, stride)


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("family_name, name", REGISTERED)
def test_gradient_reaches_the_input(family_name, name, stride):
    registry = get_registry()
    family, primitive = registry.family(family_name), registry.primitive(family_name, name)
    op = primitive.build(8, stride).double()
    x = family.example_input(4, 8, size=8, dtype=torch.float64).requires_grad_(True)
    out = op(x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if name == "none":
        assert torch.count_nonzero(out) == 0 and torch.count_nonzero(x.grad) == 0
    else:
        assert x.grad.abs().sum() > 0
        parameters = [p for p in op.parameters() if p.requires_grad]
        assert all(p.grad is not None for p in parameters)


@pytest.mark.parametrize("family_name, name", REGISTERED)
def test_deterministic_in_eval_mode(family_name, name):
    registry = get_registry()
    family, primitive = registry.family(family_name), registry.primitive(family_name, name)
    op = primitive.build(4, 1)
    x = family.example_input(3, 4, size=8)
    op.train()
    op(x)  # move running statistics off their initial values
    op.eval()
    with torch.no_grad():
        assert torch.equal(op(x), op(x))


@pytest.mark.parametrize("family_name", get_registry().family_names)
def test_default_primitive_set_resolves(family_name):
    registry = get_registry()
    resolved = registry.resolve(family_name)
    assert resolved and len({p.name for p in resolved}) == len(resolved)


def test_conv_families_share_one_implementation():
    registry = get_registry()
    conv1d, conv2d = registry.family("conv1d"), registry.family("conv2d")
    assert type(conv1d) is type(conv2d)
    assert [p.name for p in registry.primitives("conv1d") if not p.name.startswith("test_")] == \
        [p.name for p in registry.primitives("conv2d")]
    assert registry.primitive("conv1d", "sep_conv_3").factory.func is registry.primitive("conv2d", "sep_conv_3").factory.func


def test_paper_names_are_aliases_in_conv2d_only():
    registry = get_registry()
    for paper, ours in (("sep_conv_3x3", "sep_conv_3"), ("dil_conv_5x5", "dil_conv_5"), ("max_pool_3x3", "max_pool_3"),
                        ("avg_pool_3x3", "avg_pool_3"), ("sep_conv_7x7", "sep_conv_7")):
        assert registry.canonical_name("conv2d", paper) == ours
        with pytest.raises(KeyError, match="did you mean"):
            registry.canonical_name("conv1d", paper)


def test_conv_primitives_match_hand_computed_cases():
    registry = get_registry()
    x = torch.tensor([[[1.0, 5.0, 2.0, 0.0, 3.0]]])
    max_pool = registry.primitive("conv1d", "max_pool_3").build(1, 1)
    assert torch.equal(max_pool(x), torch.tensor([[[5.0, 5.0, 5.0, 3.0, 3.0]]]))
    avg_pool = registry.primitive("conv1d", "avg_pool_3").build(1, 2)   # padding not counted
    assert torch.allclose(avg_pool(x), torch.tensor([[[3.0, 7 / 3, 1.5]]]))
    none = registry.primitive("conv2d", "none").build(2, 2)
    assert none(torch.ones(1, 2, 5, 5)).shape == (1, 2, 3, 3)
    assert registry.primitive("linear", "skip_connect").build(3, 2)(torch.ones(2, 3)).shape == (2, 3)
