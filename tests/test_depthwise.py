"""The depthwise convolution with the faster input gradient: the same values, gradients and second
derivatives as torch's grouped convolution, in 1D and 2D, at every stride, dilation and odd size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from darts_plugins.depthwise import DepthwiseConv, _DepthwiseConv, weight_gradient


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("kernel, dilation, stride, size", [
    (3, 1, 1, 9), (3, 1, 2, 9), (5, 1, 2, 8), (3, 2, 2, 9), (5, 2, 2, 10), (5, 2, 1, 7), (3, 2, 2, 8), (3, 2, 1, 8),
    (3, 3, 1, 10), (3, 2, 4, 11)])
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
    """Space to batch (stride 1, sub-grids at least a kernel wide), one sub-grid (stride a multiple of the
    dilation) or torch's own kernel (padding not a multiple of the dilation, other strides): the numbers of
    torch's dilated kernel."""
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
