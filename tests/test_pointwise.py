"""1-wide convolutions as matrix products: torch's convolution's values, gradients and second derivatives,
and no convolution kernel called for sequences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from darts_plugins.conv import ReLUConvBN
from darts_plugins.depthwise import SeparableConv
from darts.kernels import ENVIRONMENT
from darts_plugins.pointwise import PointwiseConv, pointwise_conv


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names, self.shapes = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__)
        if "convolution" in func.__name__:
            self.shapes += [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("shape, channels_last, c_out", [
    ((3, 4, 7), False, 5), ((2, 4, 5, 3), False, 5), ((2, 4, 5, 3), True, 5), ((1, 4, 1), False, 5),
    ((2, 16, 5, 3), True, 17), ((2, 16, 5, 3), False, 17), ((2, 17, 1, 1), True, 16)])
def test_values_gradients_and_second_derivatives_match_torchs_convolution(shape, channels_last, c_out):
    """Sequences (matrix products) and images in either layout (torch's convolution)."""
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(c_out, shape[1], *[1] * (len(shape) - 2), dtype=torch.double, requires_grad=True)
    conv = (F.conv1d, F.conv2d)[len(shape) - 3]
    out = pointwise_conv(x, w)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert torch.allclose(out, conv(x, w)) and out.is_contiguous(memory_format=layout)
    grad = torch.randn_like(out)
    for wanted in [(x, w), (x,), (w,)]:
        ours = torch.autograd.grad(pointwise_conv(x, w), wanted, grad)
        assert all(torch.allclose(a, b) for a, b in zip(ours, torch.autograd.grad(conv(x, w), wanted, grad)))
    assert torch.autograd.gradcheck(pointwise_conv, (x, w)) and torch.autograd.gradgradcheck(pointwise_conv, (x, w))


def test_a_transposed_input_and_gradient_are_taken_as_they_are():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 4).transpose(1, 2).requires_grad_()  # (3, 4, 7), not contiguous
    w = torch.randn(6, 4, 1, requires_grad=True)
    grad = torch.randn(3, 7, 6).transpose(1, 2)
    ours = torch.autograd.grad(pointwise_conv(x, w), (x, w), grad)
    expected = torch.autograd.grad(F.conv1d(x, w), (x, w), grad)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ours, expected))


def test_sequences_call_no_convolution_kernel():
    """The matrix product is the point: oneDNN's convolution is 2 to 10 times slower for these shapes."""
    x = torch.randn(4, 8, 16, requires_grad=True)
    w = torch.randn(8, 8, 1, requires_grad=True)
    with _Ops() as ops:
        pointwise_conv(x, w).sum().backward()
    assert not [name for name in ops.names if "convolution" in name]
    assert "bmm.default" in ops.names


@pytest.mark.parametrize("switch", ["auto", "torch"])
def test_images_keep_torchs_convolution_and_their_layout(switch, monkeypatch):
    """Channels-last images' products stay oneDNN's convolution (as matrix products they measured no faster in
    whole steps), in a module and in a separable convolution's pointwise half."""
    monkeypatch.setenv(ENVIRONMENT, switch)
    x = torch.randn(2, 16, 6, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    for module in (PointwiseConv(2, 16, 16), SeparableConv(2, 16, 16, 3, padding=1)):
        with _Ops() as ops:
            out = module(x)
            out.backward(torch.randn_like(out))
        assert (16, 16, 1, 1) in ops.shapes and "mm.default" not in ops.names
        assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("numba", [True, False])
def test_a_separable_convolution_of_sequences_takes_its_pointwise_half_as_a_product(numba, monkeypatch):
    """And its depthwise half in numba's kernels (without numba, torch's convolution)."""
    from darts import compiled

    if not numba:
        monkeypatch.setattr(compiled, "njit", None)
    module = SeparableConv(1, 3, 4, 3, padding=1)
    x = torch.randn(2, 3, 9, requires_grad=True)
    with _Ops() as ops:
        module(x).sum().backward()
    assert (4, 3, 1) not in ops.shapes
    assert ((3, 1, 3) in ops.shapes) == (not numba)


@pytest.mark.parametrize("ndim", [1, 2])
def test_the_module_has_torchs_weight_name_shape_and_initial_scale(ndim):
    torch.manual_seed(0)
    ours = PointwiseConv(ndim, 6, 4)
    torch.manual_seed(0)
    theirs = getattr(nn, f"Conv{ndim}d")(6, 4, 1, bias=False)
    assert list(ours.state_dict()) == ["weight"] and torch.equal(ours.weight, theirs.weight)
    x = torch.randn(2, 6, *[5] * ndim)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_relu_conv_bn_takes_the_product_for_1_wide_convolutions_only():
    assert isinstance(ReLUConvBN(1, 4, 4, 1, 1, 0)[1], PointwiseConv)
    assert isinstance(ReLUConvBN(1, 4, 4, 7, 1, 3)[1], nn.Conv1d)
    assert isinstance(ReLUConvBN(1, 4, 4, 1, 2, 0)[1], nn.Conv1d)
    assert list(ReLUConvBN(1, 4, 4, 1, 1, 0).state_dict())[0] == "1.weight"
