"""The depthwise convolution with the faster input gradient: the same values, gradients and second
derivatives as torch's grouped convolution, in 1D and 2D, at every stride, dilation and odd size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from darts_plugins.depthwise import (DepthwiseConv, SeparableConv, _DepthwiseConv, input_gradient,
                                     phases_as_channels, separable_conv, weight_gradient)
from tests.test_lean_ops import saved_bytes


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("kernel, dilation, stride, size", [
    (3, 1, 1, 9), (3, 1, 2, 9), (5, 1, 2, 8), (5, 1, 1, 9), (7, 1, 1, 8), (7, 1, 2, 11), (3, 2, 2, 9), (5, 2, 2, 10), (5, 2, 1, 7), (3, 2, 2, 8), (3, 2, 1, 8),
    (3, 3, 1, 10), (3, 2, 4, 11)])
@pytest.mark.slow
def test_values_gradients_and_double_backward_match_torch(ndim, kernel, dilation, stride, size):
    torch.manual_seed(0)
    padding, channels = dilation * (kernel - 1) // 2, 3
    x = torch.randn(2, channels, *[size] * ndim, dtype=torch.double, requires_grad=True)
    w = torch.randn(channels, 1, *[kernel] * ndim, dtype=torch.double, requires_grad=True)

    def ours(x, w):
        return _DepthwiseConv.apply(x, w, stride, padding, dilation)

    def torchs(x, w):
        return (F.conv1d, F.conv2d)[ndim - 1](x, w, None, stride, padding, dilation, channels)

    assert torch.allclose(ours(x, w), torchs(x, w))
    grad = torch.randn_like(torchs(x, w))
    for a, b in zip(torch.autograd.grad(ours(x, w), (x, w), grad), torch.autograd.grad(torchs(x, w), (x, w), grad)):
        assert torch.allclose(a, b)
    assert torch.autograd.gradcheck(ours, (x, w)) and torch.autograd.gradgradcheck(ours, (x, w))


def test_the_module_in_channels_last_matches_a_grouped_conv():
    torch.manual_seed(0)
    module = DepthwiseConv(2, 4, 5, stride=2, padding=4, dilation=2).to(memory_format=torch.channels_last)
    x = torch.randn(3, 4, 11, 11).contiguous(memory_format=torch.channels_last).requires_grad_()
    reference = F.conv2d(x, module.weight, None, 2, 4, 2, 4)
    ours = module(x)
    assert torch.allclose(ours, reference, atol=1e-6)
    grad = torch.randn_like(ours)
    assert torch.allclose(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(reference, x, grad)[0], atol=1e-5)
    with pytest.raises(ValueError, match="padding 9 exceeds the kernel's reach 8"):
        DepthwiseConv(2, 4, 5, padding=9, dilation=2)


@pytest.mark.parametrize("ndim, channels_last", [(1, False), (2, False), (2, True), (3, False), (3, True)])
@pytest.mark.parametrize("kernel, dilation, stride, padding, size", [
    (3, 2, 1, 2, 7), (3, 2, 1, 0, 8), (5, 2, 1, 4, 9), (3, 3, 1, 3, 8), (3, 2, 2, 2, 9), (3, 2, 4, 2, 10),
    (5, 2, 1, 3, 9), (3, 2, 3, 2, 9), (3, 1, 1, 1, 6), (5, 2, 1, 4, 6)])
def test_the_weight_gradient_on_the_undilated_problem_is_torchs(ndim, channels_last, kernel, dilation, stride,
                                                                padding, size):
    """Space to batch (stride 1; sub-grids narrower than the kernel padded), one sub-grid (stride a multiple
    of the dilation) or torch's own kernel (padding not a multiple of the dilation, other strides): the
    numbers of torch's dilated kernel."""
    torch.manual_seed(0)
    channels = 3
    x = torch.randn(2, channels, *[size] * ndim, dtype=torch.double)
    w = torch.randn(channels, 1, *[kernel] * ndim, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if ndim == 2 else torch.channels_last_3d)
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    grad = torch.randn_like(conv(x, w, None, stride, padding, dilation, channels))
    w_ = w.clone().requires_grad_()
    expected = torch.autograd.grad(conv(x, w_, None, stride, padding, dilation, channels), w_, grad)[0]
    assert torch.allclose(weight_gradient(grad, x, w, stride, padding, dilation), expected)


@pytest.mark.parametrize("height, width, d", [(6, 8, 2), (7, 5, 2), (9, 9, 3), (4, 4, 1)])
def test_phases_as_channels_are_the_interleaved_sub_grids(height, width, d):
    """Sample n's row phase p and column phase q land at batch n d + p, channels q C to (q + 1) C; sizes
    that are not multiples of d are zero-padded at their end. The layout stays channels-last."""
    x = torch.randn(2, 3, height, width).contiguous(memory_format=torch.channels_last)
    padded = F.pad(x, [0, -width % d, 0, -height % d])
    out = phases_as_channels(x, d)
    assert out.shape == (2 * d, 3 * d, -(-height // d), -(-width // d))
    assert out.is_contiguous(memory_format=torch.channels_last)
    for n in range(2):
        for p in range(d):
            for q in range(d):
                assert torch.equal(out[n * d + p, q * 3:(q + 1) * 3], padded[n, :, p::d, q::d])


@pytest.mark.parametrize("ndim, channels_last", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("kernel, stride, padding, size", [
    (5, 1, 2, 9), (5, 1, 2, 4), (5, 2, 2, 9), (5, 2, 2, 8), (5, 1, 0, 7), (5, 1, 1, 8), (5, 3, 4, 10), (7, 1, 3, 8),
    (7, 2, 3, 11), (7, 1, 6, 5), (4, 1, 1, 6), (6, 2, 2, 9)])
def test_wide_kernels_weight_gradient_is_torchs(ndim, channels_last, kernel, stride, padding, size):
    """Kernels wider than oneDNN's fast weight-gradient kernel takes (column pieces in 2D, the sequence as
    the first of two dimensions in 1D): torch's numbers, at any stride, padding (centred or not) and size."""
    torch.manual_seed(0)
    channels = 3
    x = torch.randn(2, channels, *[size] * ndim, dtype=torch.double)
    w = torch.randn(channels, 1, *[kernel] * ndim, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    conv = (F.conv1d, F.conv2d)[ndim - 1]
    grad = torch.randn_like(conv(x, w, None, stride, padding, 1, channels))
    w_ = w.clone().requires_grad_()
    expected = torch.autograd.grad(conv(x, w_, None, stride, padding, 1, channels), w_, grad)[0]
    assert torch.allclose(weight_gradient(grad, x, w, stride, padding, 1), expected)


class _WeightGradientShapes(TorchDispatchMode):
    """The kernel shapes of the weight gradients that torch's convolution backward is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []  # kernel, input, dilation

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default and args[-1][1]:
            self.calls.append((tuple(args[2].shape[2:]), tuple(args[1].shape[2:]), tuple(args[6])))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("ndim, kernel, dilation, size, expected", [
    (2, 5, 1, 16, [(5, 3), (5, 2)]), (2, 7, 1, 16, [(7, 3), (7, 3), (7, 1)]), (2, 5, 2, 16, [(5, 3), (5, 2)]),
    (2, 5, 2, 8, [(5, 3), (5, 2)]), (2, 3, 2, 4, [(3, 3)]), (2, 3, 1, 16, [(3, 3)]), (1, 5, 1, 16, [(5, 1)]),
    (1, 7, 2, 16, [(7, 1)]), (1, 3, 1, 16, [(3,)])])
@pytest.mark.parametrize("channels_last", [False, True])
def test_wide_kernels_reach_torch_at_most_three_wide(ndim, kernel, dilation, size, expected, channels_last,
                                                     numba_off):
    """What oneDNN's fast depthwise weight-gradient kernel needs: every kernel torch sees is undilated (after
    space to batch, or the phases as channels), at most 3 wide in its last dimension, and no larger than its
    (padded) input (the numba kernels, which take float32 sequences first, off: as without numba)."""
    x = torch.randn(2, 4, *[size] * ndim)
    if channels_last and ndim == 2:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    module = DepthwiseConv(ndim, 4, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
    out = module(x)
    with _WeightGradientShapes() as shapes:
        torch.autograd.grad(out, module.weight, torch.randn_like(out))
    assert [kernel for kernel, _, _ in shapes.calls] == expected
    for kernel, inputs, dilations in shapes.calls:
        assert all(n >= k for n, k in zip(inputs, kernel)) and set(dilations) == {1}


@pytest.mark.parametrize("ndim, channels_last", [(1, False), (2, False), (2, True), (3, True)])
@pytest.mark.parametrize("kernel, dilation, stride, padding, size", [
    (3, 1, 1, 1, 7), (5, 1, 1, 0, 8), (3, 1, 2, 1, 9), (3, 1, 2, 1, 8), (5, 1, 2, 2, 9), (5, 1, 3, 1, 10),
    (3, 2, 1, 2, 7), (3, 2, 2, 2, 9), (3, 2, 2, 2, 8), (5, 2, 2, 4, 10), (3, 2, 4, 2, 11), (3, 2, 2, 1, 9),
    (3, 3, 2, 3, 10), (3, 2, 2, 0, 9)])
def test_the_input_gradient_is_torchs(ndim, channels_last, kernel, dilation, stride, padding, size):
    """Each way of taking it (the flipped kernel at stride 1, upsampled or not; the one sub-grid read when the
    stride and padding are multiples of the dilation; the transposed convolution when undilated and strided):
    torch's numbers, in 2D in the input's layout (the conv2d family's channels-last)."""
    torch.manual_seed(0)
    channels = 3
    x = torch.randn(2, channels, *[size] * ndim, dtype=torch.double)
    w = torch.randn(channels, 1, *[kernel] * ndim, dtype=torch.double)
    layout = {2: torch.channels_last, 3: torch.channels_last_3d}.get(ndim) if channels_last else None
    if layout:
        x = x.contiguous(memory_format=layout)
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    x_ = x.clone().requires_grad_()
    out = conv(x_, w, None, stride, padding, dilation, channels)
    grad = torch.randn_like(out)
    expected = torch.autograd.grad(out, x_, grad)[0]
    ours = input_gradient(grad, x, w, stride, padding, dilation)
    assert ours.shape == x.shape and torch.allclose(ours, expected)
    if ndim == 2:
        assert ours.is_contiguous(memory_format=layout or torch.contiguous_format)


@pytest.mark.parametrize("ndim, channels_last", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("kernel, dilation, stride, relu", [(3, 1, 1, False), (5, 1, 2, False), (3, 2, 1, True),
                                                            (5, 2, 2, False), (7, 1, 1, True), (3, 1, 2, True)])
def test_separable_conv_is_torchs_two_convolutions_and_keeps_only_its_input(ndim, channels_last, kernel, dilation,
                                                                              stride, relu):
    """(A ReLU,) the depthwise then pointwise convolution as one node: torch's values, gradients (all, or the
    input's alone, as a finite-difference pass asks) and second derivatives; it keeps its input and weights
    only."""
    torch.manual_seed(0)
    padding = dilation * (kernel - 1) // 2
    module = SeparableConv(ndim, 3, 4, kernel, stride, padding, dilation, relu=relu).double()
    x = torch.randn(2, 3, *[9] * ndim, dtype=torch.double)
    if channels_last:
        module, x = module.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    conv = (F.conv1d, F.conv2d)[ndim - 1]

    def ours(x, depthwise, pointwise):
        return module(x) if depthwise is module.depthwise.weight else separable_conv(
            x, depthwise, pointwise, stride, padding, dilation, relu)

    def torchs(x, depthwise, pointwise):
        return conv(conv(torch.relu(x) if relu else x, depthwise, None, stride, padding, dilation, 3), pointwise)

    weights = (module.depthwise.weight, module.pointwise.weight)
    out = ours(x, *weights)
    assert torch.allclose(out, torchs(x, *weights))
    grad = torch.randn_like(out)
    for wanted in [(x, *weights), (x,), weights[1:]]:
        expected = torch.autograd.grad(torchs(x, *weights), wanted, grad)
        assert all(torch.allclose(a, b) for a, b in zip(torch.autograd.grad(ours(x, *weights), wanted, grad), expected))
    detached = [w.detach() for w in weights]  # a finite-difference pass: the input's gradient alone
    assert torch.allclose(torch.autograd.grad(ours(x, *detached), x, grad)[0],
                          torch.autograd.grad(torchs(x, *detached), x, grad)[0])
    small = [t.detach()[:1, :, :6].clone().requires_grad_() if t is x else t for t in (x, *weights)]
    assert torch.autograd.gradgradcheck(lambda *args: ours(*args), small)
    assert saved_bytes(lambda: module(x)) == sum(t.numel() * t.element_size() for t in (x, *weights))
