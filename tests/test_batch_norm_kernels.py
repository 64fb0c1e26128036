"""The numba batch-norm kernels for channels-innermost and contiguous tensors against torch's batch norm in
float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from darts import SearchNetwork
from darts.search_space import batch_norm_kernels
from darts.search_space.weighted_norm import LeanBatchNorm2d, weighted_batch_norm

pytest.importorskip("numba")


def channels_innermost(shape: tuple[int, ...], scale: float = 1.0, shift: float = 0.0,
                       innermost: bool = True) -> torch.Tensor:
    """A float64 tensor of ``shape`` (batch, channels, ...) with the channels innermost in memory (else
    contiguous: outermost)."""
    if not innermost:
        return torch.randn(shape, dtype=torch.float64) * scale + shift
    values = torch.randn(shape[0], *shape[2:], shape[1], dtype=torch.float64) * scale + shift
    return values.movedim(-1, 1)


# (shape, scale, shift): every rank; channels dividing the kernels' 256-wide rows, not dividing them and wider;
# lengths leaving a partial row; as many values per sample as a channels-outermost row holds (MAX_LANES);
# a mean 10^4 times the deviation (the variance is accumulated around a shift)
CASES = [((37, 5), 1, 0), ((6, 16, 13), 2, 1), ((32, 8, 16, 32), 1, 0), ((5, 24, 7, 7), 3, -2),
         ((4, 3, 5, 3), 1, 0), ((2, 300, 3, 2), 1, 0), ((3, 4, 3, 4, 5), 1, 0), ((16, 16, 8, 8), 0.01, 100.0)]


@pytest.mark.parametrize("shape, scale, shift", CASES)
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("innermost", [True, False])
def test_the_forward_kernel_is_torchs_batch_norm(shape, scale, shift, track, innermost):
    torch.manual_seed(0)
    z = channels_innermost(shape, scale, shift, innermost)
    channels = shape[1]
    mean64, var64 = torch.rand(channels, dtype=torch.float64), torch.rand(channels, dtype=torch.float64) + 0.5
    mean32, var32 = mean64.float(), var64.float()
    assert batch_norm_kernels.usable(z.float())
    before = channels_innermost(shape, innermost=innermost)
    xhat, invstd, weighted = batch_norm_kernels.forward(
        z.float(), mean32 if track else None, var32 if track else None, 0.3, 1e-5, 0.7, before.float())
    # the reference normalises the float32 input, in float64
    ref, _, ref_invstd = torch.native_batch_norm(z.float().double(), None, None, mean64, var64, True, 0.3, 1e-5)
    assert xhat.stride() == z.stride() and xhat.dtype == torch.float32
    torch.testing.assert_close(xhat.double(), ref, rtol=0, atol=2e-5)
    torch.testing.assert_close(invstd.double(), ref_invstd, rtol=2e-5, atol=0)
    torch.testing.assert_close(weighted.double(), before.float().double() + 0.7 * ref, rtol=0, atol=3e-5)
    assert weighted.stride() == z.stride()
    if track:  # the unbiased variance, as torch
        torch.testing.assert_close(mean32.double(), mean64, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(var32.double(), var64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, scale, shift", CASES)
@pytest.mark.parametrize("want_input", [True, False])
@pytest.mark.parametrize("innermost", [True, False])
def test_the_backward_kernel_is_autograd_through_an_affine_batch_norm(shape, scale, shift, want_input, innermost):
    torch.manual_seed(1)
    channels = shape[1]
    z = channels_innermost(shape, scale, shift, innermost).float().double().requires_grad_()  # float32's values
    weight = torch.rand(channels, dtype=torch.float64, requires_grad=True)
    out = F.batch_norm(z, None, None, weight, None, training=True, eps=1e-5)
    grad = torch.randn_like(out)
    grad_z, grad_weight = torch.autograd.grad(out, (z, weight), grad)
    xhat, invstd, weighted = batch_norm_kernels.forward(z.detach().float(), None, None, 0.1, 1e-5)
    assert weighted is None
    ours_z, ours_weight = batch_norm_kernels.backward(grad.float(), xhat, weight.detach().float() * invstd, want_input)
    torch.testing.assert_close(ours_weight.double(), grad_weight, rtol=1e-4, atol=1e-4)
    if want_input:
        assert ours_z.stride() == z.stride()
        torch.testing.assert_close(ours_z.double(), grad_z, rtol=0, atol=1e-4 * float(grad_z.abs().max()))
    else:
        assert ours_z is None


def test_the_backward_kernel_takes_a_gradient_in_another_layout():
    torch.manual_seed(2)
    z = channels_innermost((4, 8, 6, 6)).float()
    xhat, invstd, _ = batch_norm_kernels.forward(z, None, None, 0.1, 1e-5)
    grad = torch.randn(4, 8, 6, 6)  # contiguous: channels outermost
    expected = batch_norm_kernels.backward(grad.contiguous(memory_format=torch.channels_last), xhat, invstd, True)
    for ours, theirs in zip(batch_norm_kernels.backward(grad, xhat, invstd, True), expected):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_the_weighted_sum_takes_a_weight_alone_or_a_term_in_another_layout_and_refuses_a_wrong_one():
    torch.manual_seed(5)
    z = channels_innermost((4, 8, 6, 6)).float()
    xhat, _, weighted = batch_norm_kernels.forward(z, None, None, 0.1, 1e-5, 0.25)
    torch.testing.assert_close(weighted, 0.25 * xhat, rtol=0, atol=1e-7)
    before = torch.randn(4, 8, 6, 6)  # channels outermost
    torch.testing.assert_close(batch_norm_kernels.forward(z, None, None, 0.1, 1e-5, 0.25, before)[2],
                               before + 0.25 * xhat, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"before: a \[4, 8, 6, 6\] torch.float32 tensor"):
        batch_norm_kernels.forward(z, None, None, 0.1, 1e-5, 0.25, before[:, :4])
    with pytest.raises(ValueError, match="with a weight"):
        batch_norm_kernels.forward(z, None, None, 0.1, 1e-5, None, before)


def test_the_kernels_apply_only_to_float32_channels_innermost_or_contiguous_cpu_tensors(monkeypatch):
    image = torch.randn(2, 3, 4, 5)
    assert batch_norm_kernels.usable(image.contiguous(memory_format=torch.channels_last))
    assert batch_norm_kernels.usable(torch.randn(6, 3))
    assert batch_norm_kernels.usable(image) and batch_norm_kernels.usable(torch.randn(64, 8, 128))
    # channels outermost with more values per sample than a row holds: torch's kernel
    assert not batch_norm_kernels.usable(torch.randn(2, 2, batch_norm_kernels.MAX_LANES // 2 + 1))
    assert not batch_norm_kernels.usable(image.transpose(2, 3))  # neither layout
    assert not batch_norm_kernels.usable(image.double().contiguous(memory_format=torch.channels_last))
    assert not batch_norm_kernels.usable(image.contiguous(memory_format=torch.channels_last)[:, :, ::2])
    monkeypatch.setenv("DARTS_KERNELS", "torch")
    assert not batch_norm_kernels.usable(torch.randn(6, 3))
    monkeypatch.delenv("DARTS_KERNELS")
    threads = torch.get_num_threads()
    try:  # single-threaded kernels, used at any thread count
        torch.set_num_threads(2)
        assert batch_norm_kernels.usable(torch.randn(6, 3))
    finally:
        torch.set_num_threads(threads)
    from darts import compiled

    monkeypatch.setattr(compiled, "njit", None)  # numba not installed
    assert not batch_norm_kernels.usable(torch.randn(6, 3))


def test_the_fused_batch_norms_use_the_kernels_with_torchs_numbers():
    """Values, gradients and running statistics of the weighted and the lean batch norm on a channels-last
    float32 batch: those of torch's batch norm in float64."""
    torch.manual_seed(3)
    z = channels_innermost((8, 6, 5, 5), 2.0, 1.0)
    norm = LeanBatchNorm2d(6, affine=False)
    reference = torch.nn.BatchNorm2d(6, affine=False).double()
    w = torch.tensor(0.7, requires_grad=True)
    z32 = z.float().requires_grad_()
    before = torch.randn(8, 6, 5, 5, requires_grad=True)
    with _CountBatchNorms() as counted:
        out = weighted_batch_norm(z32, w, norm, before) + norm(z32)
        grad = torch.randn_like(out)
        grads = torch.autograd.grad(out, (z32, w, before), grad)
    assert counted.calls == 0  # torch's kernels were not called
    z64, w64 = z.float().double().requires_grad_(), w.detach().double().requires_grad_()
    before64 = before.detach().double().requires_grad_()
    expected = before64 + w64 * reference(z64)
    expected = expected + reference(z64)  # twice, as the lean norm counted two batches
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)
    for ours, theirs in zip(grads, torch.autograd.grad(expected, (z64, w64, before64), grad.double())):
        torch.testing.assert_close(ours.double(), theirs, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(norm.buffers(), reference.buffers()):
        torch.testing.assert_close(ours.double(), theirs.double(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family, size", [("conv2d", (8, 8)), ("conv1d", (16,))])
def test_a_search_step_calls_no_torch_batch_norm_kernel_in_the_cells(family, size):
    """Channels-last images and contiguous sequences alike."""
    torch.manual_seed(4)
    network = SearchNetwork(family, 3, 4, 10, layers=2, nodes=2)
    x = torch.randn(4, 3, *size)
    with _CountBatchNorms() as counted:
        F.cross_entropy(network(x), torch.randint(0, 10, (4,))).backward()
    # only the stem's BatchNorm (affine) is torch's: its forward and backward pass; the preprocessing's and
    # every edge's norm are the kernels'
    assert counted.calls == 2


class _CountBatchNorms(TorchDispatchMode):
    """Counts the calls of torch's batch-norm kernels (forward and backward)."""

    def __enter__(self):
        self.calls = 0
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "batch_norm" in func.__name__ and "update_stats" not in func.__name__:
            self.calls += 1
        return func(*args, **(kwargs or {}))
