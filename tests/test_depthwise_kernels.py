"""The numba depthwise-convolution kernels for sequences against torch's grouped convolution in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from darts_plugins import depthwise_kernels
from darts_plugins.depthwise import DepthwiseConv, _DepthwiseConv

pytest.importorskip("numba")

# (kernel, stride, padding, dilation): DARTS' sep_conv and dil_conv at stride 1 and 2, no padding, padding
# beyond the kernel's half, a stride wider than the kernel, a 1-wide kernel
SETTINGS = [(3, 1, 1, 1), (5, 1, 2, 1), (3, 1, 2, 2), (5, 1, 4, 2), (3, 2, 1, 1), (5, 2, 4, 2), (7, 1, 3, 1),
            (3, 1, 0, 1), (3, 3, 1, 2), (1, 2, 0, 1), (3, 1, 3, 3), (2, 2, 1, 1)]


@pytest.mark.parametrize("kernel, stride, padding, dilation", SETTINGS)
@pytest.mark.parametrize("length", [1, 2, 7, 16])
def test_values_and_both_gradients_are_torchs(kernel, stride, padding, dilation, length):
    if length + 2 * padding < dilation * (kernel - 1) + 1:
        pytest.skip("no output: torch refuses this size too")
    torch.manual_seed(0)
    channels = 5
    x = torch.randn(3, channels, length, dtype=torch.float64).float().double().requires_grad_()
    w = torch.randn(channels, 1, kernel, dtype=torch.float64).float().double().requires_grad_()
    expected = F.conv1d(x, w, None, stride, padding, dilation, channels)
    grad = torch.randn_like(expected).float().double()
    grad_x, grad_w = torch.autograd.grad(expected, (x, w), grad)
    x32, w32, grad32 = x.detach().float(), w.detach().float(), grad.float()
    assert depthwise_kernels.usable(x32, w32)
    out = depthwise_kernels.forward(x32, w32, stride, padding, dilation)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(depthwise_kernels.input_gradient(grad32, x32, w32, stride, padding, dilation).double(),
                               grad_x, rtol=0, atol=1e-5)
    torch.testing.assert_close(depthwise_kernels.weight_gradient(grad32, x32, w32, stride, padding, dilation).double(),
                               grad_w, rtol=0, atol=1e-4)


def test_non_contiguous_inputs_are_taken():
    torch.manual_seed(1)
    x = torch.randn(4, 9, 6).transpose(1, 2)  # (4, 6, 9), not contiguous
    w = torch.randn(6, 1, 3)
    grad = torch.randn(4, 9, 6).transpose(1, 2)
    torch.testing.assert_close(depthwise_kernels.forward(x, w, 1, 1, 1), F.conv1d(x, w, None, 1, 1, 1, 6))
    torch.testing.assert_close(depthwise_kernels.input_gradient(grad, x, w, 1, 1, 1),
                               torch.nn.grad.conv1d_input(x.shape, w, grad, 1, 1, 1, 6))
    torch.testing.assert_close(depthwise_kernels.weight_gradient(grad, x, w, 1, 1, 1),
                               torch.nn.grad.conv1d_weight(x, w.shape, grad, 1, 1, 1, 6), rtol=1e-4, atol=1e-4)


def test_double_backward_goes_to_torchs_differentiable_operations():
    """The exact second-order step differentiates the gradients: in float32 too they are torch's."""
    torch.manual_seed(2)
    x = torch.randn(2, 3, 11, requires_grad=True)
    w = torch.randn(3, 1, 3, requires_grad=True)

    def second_derivatives(conv):
        grad_x, = torch.autograd.grad((conv(x, w) ** 2).sum(), x, create_graph=True)
        return torch.autograd.grad((grad_x ** 2).sum(), (x, w))

    ours = second_derivatives(lambda x, w: _DepthwiseConv.apply(x, w, 1, 2, 2))
    theirs = second_derivatives(lambda x, w: F.conv1d(x, w, None, 1, 2, 2, 3))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_module_uses_the_kernels_for_float32_sequences_only(monkeypatch):
    calls = []
    real = depthwise_kernels._forward
    monkeypatch.setattr(depthwise_kernels, "_forward", lambda *args: calls.append(1) or real(*args))
    DepthwiseConv(1, 4, 3, padding=1)(torch.randn(2, 4, 8))
    assert calls == [1]
    DepthwiseConv(1, 4, 3, padding=1).double()(torch.randn(2, 4, 8, dtype=torch.float64))
    DepthwiseConv(2, 4, 3, padding=1)(torch.randn(2, 4, 8, 8))
    monkeypatch.setenv("DARTS_KERNELS", "torch")
    DepthwiseConv(1, 4, 3, padding=1)(torch.randn(2, 4, 8))
    assert calls == [1]


def test_the_kernels_refuse_what_they_do_not_compute():
    x = torch.randn(2, 3, 8)
    assert depthwise_kernels.usable(x)
    assert not depthwise_kernels.usable(x.double()) and not depthwise_kernels.usable(x[..., None])
    threads = torch.get_num_threads()
    try:  # single-threaded kernels, used at any thread count (faster than torch's two-thread convolutions)
        torch.set_num_threads(2)
        assert depthwise_kernels.usable(x)
    finally:
        torch.set_num_threads(threads)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not depthwise_kernels.usable(x)
