"""The numba pooling kernels for sequences, and the pooling modules that use them, against torch's pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from darts_plugins import pooling_kernels
from darts_plugins.pooling import AvgPool, MaxPool

pytest.importorskip("numba")

# (kernel, stride, padding): DARTS' 3-wide poolings at stride 1 and 2, wider and narrower windows
SETTINGS = [(3, 1, 1), (3, 2, 1), (5, 1, 2), (2, 2, 1), (2, 1, 0), (4, 3, 2)]


def _valid(length: int, kernel: int, padding: int) -> bool:
    return length + 2 * padding >= kernel


@pytest.mark.parametrize("kernel, stride, padding", SETTINGS)
@pytest.mark.parametrize("length", [1, 2, 5, 16])
def test_average_pooling_is_torchs_without_the_padding(kernel, stride, padding, length):
    if not _valid(length, kernel, padding):
        pytest.skip("no window: torch refuses this size too")
    torch.manual_seed(0)
    x = torch.randn(3, 4, length, dtype=torch.float64).float().double().requires_grad_()
    expected = F.avg_pool1d(x, kernel, stride, padding, count_include_pad=False)
    grad = torch.randn_like(expected).float().double()
    x32 = x.detach().float()
    torch.testing.assert_close(pooling_kernels.avg_pool(x32, kernel, stride, padding).double(), expected,
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(pooling_kernels.avg_pool_backward(grad.float(), x32, kernel, stride, padding).double(),
                               torch.autograd.grad(expected, x, grad)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel, stride, padding", SETTINGS)
@pytest.mark.parametrize("length", [1, 2, 5, 16])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pooling_sends_each_windows_gradient_to_its_first_maximum_as_torch(kernel, stride, padding, length,
                                                                              ties):
    if not _valid(length, kernel, padding):
        pytest.skip("no window: torch refuses this size too")
    torch.manual_seed(1)
    x = torch.randn(3, 4, length)
    if ties:  # few distinct values: most windows hold their maximum twice or more
        x = x.round().clamp(-1, 1)
    x.requires_grad_()
    expected = F.max_pool1d(x, kernel, stride, padding)
    grad = torch.randn_like(expected)
    ours = pooling_kernels.max_pool_backward(grad, x.detach(), kernel, stride, padding)
    torch.testing.assert_close(ours, torch.autograd.grad(expected, x, grad)[0], rtol=0, atol=1e-6)


def test_a_window_whose_maximum_is_nan_passes_no_gradient():
    x = torch.tensor([[[1.0, float("nan"), 2.0, 0.0, 5.0]]])
    grad = torch.ones(1, 1, 5)
    ours = pooling_kernels.max_pool_backward(grad, x, 3, 1, 1)
    # windows 0-2 hold the NaN; windows 3 and 4 send theirs to the 5
    assert torch.equal(ours, torch.tensor([[[0.0, 0.0, 0.0, 0.0, 2.0]]]))


@pytest.mark.parametrize("stride", [1, 2])
def test_the_modules_give_torchs_values_gradients_and_second_derivatives_in_float32(stride, monkeypatch):
    """The kernels serve float32 sequences; the exact step's double backward goes through torch's gradient."""
    calls = _counted(monkeypatch, ("avg_pool", "avg_pool_backward", "max_pool_backward"))
    torch.manual_seed(2)
    x = torch.randn(4, 6, 11, requires_grad=True)
    _assert_like_torch(x, [(AvgPool(1, 3, stride, 1), nn.AvgPool1d(3, stride, 1, count_include_pad=False)),
                           (MaxPool(1, 3, stride, 1), nn.MaxPool1d(3, stride, 1))])
    assert sorted(set(calls)) == ["avg_pool", "avg_pool_backward", "max_pool_backward"]


def _counted(monkeypatch, names: tuple[str, ...]) -> list[str]:
    """The names of the kernel functions called from now on (the list fills as they are)."""
    calls: list[str] = []
    for name in names:
        real = getattr(pooling_kernels, name)
        monkeypatch.setattr(pooling_kernels, name, lambda *args, real=real, name=name: calls.append(name) or real(*args))
    return calls


def _assert_like_torch(x: torch.Tensor, pairs: list[tuple[nn.Module, nn.Module]]) -> None:
    """Each of our modules gives its torch twin's values, gradients and second derivatives on ``x``."""
    for ours, theirs in pairs:
        out = ours(x)
        torch.testing.assert_close(out, theirs(x), rtol=0, atol=1e-6)
        grad = torch.randn_like(out)
        torch.testing.assert_close(torch.autograd.grad(out, x, grad)[0],
                                   torch.autograd.grad(theirs(x), x, grad)[0], rtol=0, atol=1e-6)

        def second(pool):
            first, = torch.autograd.grad((pool(x) ** 3).sum(), x, create_graph=True)
            return torch.autograd.grad((first ** 2).sum(), x)[0]

        torch.testing.assert_close(second(ours), second(theirs), rtol=1e-4, atol=1e-4)


def test_the_kernels_serve_float32_cpu_sequences_only(monkeypatch):
    x = torch.randn(2, 3, 8)
    assert pooling_kernels.usable(x)
    assert not pooling_kernels.usable(x.double()) and not pooling_kernels.usable(x[..., None])
    monkeypatch.setenv("DARTS_KERNELS", "torch")
    assert not pooling_kernels.usable(x)
    torch.testing.assert_close(AvgPool(1, 3, 1, 1)(x), F.avg_pool1d(x, 3, 1, 1, count_include_pad=False))


def test_average_pooling_names_a_wrong_dimension():
    with pytest.raises(ValueError, match="1, 2 or 3 spatial dimensions, got 4"):
        AvgPool(4, 3)
    with pytest.raises(ValueError, match=r"2D average pooling needs \(batch, channels, 2 spatial\) inputs"):
        AvgPool(2, 3)(torch.randn(2, 3, 5))
    image = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(AvgPool(2, 3, 2, 1)(image), F.avg_pool2d(image, 3, 2, 1, count_include_pad=False))


# --- images (channels last) ------------------------------------------------------------------------------------

def _image(height: int, width: int, seed: int, channels: int = 5) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(3, channels, height, width).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kernel, stride, padding", SETTINGS)
@pytest.mark.parametrize("height, width", [(1, 2), (5, 5), (16, 7), (2, 16)])
def test_2d_average_pooling_is_torchs_without_the_padding(kernel, stride, padding, height, width):
    if not (_valid(height, kernel, padding) and _valid(width, kernel, padding)):
        pytest.skip("no window: torch refuses this size too")
    x32 = _image(height, width, 3)
    x = x32.double().requires_grad_()
    expected = F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)
    grad = torch.randn_like(expected).float().double()
    ours = pooling_kernels.avg_pool_2d(x32, kernel, stride, padding)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours.double(), expected, rtol=0, atol=1e-6)
    ours_grad = pooling_kernels.avg_pool_2d_backward(grad.float().contiguous(), x32, kernel, stride, padding)
    assert ours_grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours_grad.double(), torch.autograd.grad(expected, x, grad)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel, stride, padding", SETTINGS)
@pytest.mark.parametrize("height, width", [(1, 2), (5, 5), (16, 7)])
@pytest.mark.parametrize("ties", [False, True])
def test_2d_max_pooling_sends_each_windows_gradient_to_its_first_maximum_as_torch(kernel, stride, padding, height,
                                                                                 width, ties):
    if not (_valid(height, kernel, padding) and _valid(width, kernel, padding)):
        pytest.skip("no window: torch refuses this size too")
    x = _image(height, width, 4)
    if ties:  # few distinct values: most windows hold their maximum twice or more
        x = x.round().clamp(-1, 1)
    x.requires_grad_()
    expected = F.max_pool2d(x, kernel, stride, padding)
    grad = torch.randn_like(expected)
    assert torch.equal(pooling_kernels.max_pool_2d(x.detach(), kernel, stride, padding), expected)
    ours = pooling_kernels.max_pool_2d_backward(grad, x.detach(), kernel, stride, padding)
    # float32 sums of up to 25 gradients, in another order than torch's
    torch.testing.assert_close(ours, torch.autograd.grad(expected, x, grad)[0], rtol=1e-6, atol=1e-6)


def test_a_2d_window_holding_a_nan_has_it_for_maximum_and_passes_no_gradient():
    x = torch.zeros(1, 2, 3, 4).contiguous(memory_format=torch.channels_last)
    x[0, 1, 0, 0] = float("nan")
    x[0, 1, 2, 3] = 7.0
    out = pooling_kernels.max_pool_2d(x, 3, 1, 1)
    assert torch.equal(out.isnan(), F.max_pool2d(x, 3, 1, 1).isnan())
    grad_x = pooling_kernels.max_pool_2d_backward(torch.ones_like(out), x, 3, 1, 1)
    # channel 1: the four windows around the NaN pass nothing; the four around the 7 send theirs to it
    assert grad_x[0, 1].sum() == 4 + 4 and grad_x[0, 1, 2, 3] == 4 and grad_x[0, 1, 0, 0] == 0
    assert grad_x[0, 0].sum() == 12  # channel 0: every window sends its gradient on


@pytest.mark.parametrize("stride", [1, 2])
def test_the_2d_modules_give_torchs_values_gradients_and_second_derivatives(stride, monkeypatch):
    """Channels-last float32 images take the kernels (max pooling's backward pass at stride 1 only); the exact
    step's double backward goes through torch's gradients."""
    calls = _counted(monkeypatch, ("avg_pool_2d", "avg_pool_2d_backward", "max_pool_2d", "max_pool_2d_backward"))
    x = _image(9, 8, 5).requires_grad_()
    _assert_like_torch(x, [(AvgPool(2, 3, stride, 1), nn.AvgPool2d(3, stride, 1, count_include_pad=False)),
                           (MaxPool(2, 3, stride, 1), nn.MaxPool2d(3, stride, 1))])
    expected = {"avg_pool_2d", "avg_pool_2d_backward", "max_pool_2d"} | ({"max_pool_2d_backward"} if stride == 1 else set())
    assert set(calls) == expected
    calls.clear()
    contiguous = x.detach().contiguous()  # another layout: torch's pooling
    torch.testing.assert_close(AvgPool(2, 3, stride, 1)(contiguous), F.avg_pool2d(contiguous, 3, stride, 1,
                                                                                 count_include_pad=False))
    torch.testing.assert_close(MaxPool(2, 3, stride, 1)(contiguous), F.max_pool2d(contiguous, 3, stride, 1))
    assert calls == []


def test_the_2d_kernels_serve_channels_last_float32_cpu_images_only(monkeypatch):
    x = _image(4, 4, 6)
    assert pooling_kernels.usable_2d(x)
    assert not pooling_kernels.usable_2d(x.double()) and not pooling_kernels.usable_2d(x.contiguous())
    assert not pooling_kernels.usable_2d(x[..., 0])
    monkeypatch.setenv("DARTS_KERNELS", "torch")
    assert not pooling_kernels.usable_2d(x)
