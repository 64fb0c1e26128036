"""Max and average pooling of sequences (float32 CPU tensors, one thread), compiled by numba.

PyTorch's CPU pooling of sequences is slow for DARTS' 3-wide windows: on P3B5's 64x8x128 to 64x32x32
batches, ``avg_pool1d`` (padding not counted) takes about 0.6 ms forward and 0.5 ms backward, and
the backward pass of max pooling without indices (:mod:`darts_plugins.pooling`, torch's masks) about 1 ms,
against 10 us for an addition of two such tensors. Here the average is a depthwise convolution with unit
weights (:mod:`darts_plugins.depthwise_kernels`) scaled by the reciprocal window sizes: 40 to 90 us each
way. Max pooling's backward pass finds each window's maximum again and sends the gradient to the first
position that holds it, as torch's indices would, in branch-free loops: 170 to 300 us. (Max pooling's
forward pass stays torch's, which is fast.)

They apply (:func:`usable`) to 3D float32 CPU tensors, torch on one thread, numba importable, and
``DARTS_NUMBA_POOLING`` not ``0``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from darts.compiled import compiled_in_order, enabled, floats
from darts_plugins import depthwise_kernels

#: the environment variable that switches the kernels off with ``0``
SWITCH = "DARTS_NUMBA_POOLING"


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the kernels take these tensors (sequences: batch, channels, length)."""
    return enabled(SWITCH) and all(t.dim() == 3 and t.dtype == torch.float32 and t.device.type == "cpu"
                                   for t in tensors)


@lru_cache(maxsize=64)
def _reciprocal_sizes(length: int, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """1 / the number of positions inside the sequence of each window (padding not counted)."""
    starts = torch.arange(depthwise_kernels.output_length(length, kernel, stride, padding, 1)) * stride - padding
    sizes = (starts + kernel).clamp(max=length) - starts.clamp(min=0)
    return 1.0 / sizes.float()


@lru_cache(maxsize=64)
def _ones(channels: int, kernel: int) -> torch.Tensor:
    return torch.ones(channels, 1, kernel)


def avg_pool(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """``avg_pool1d(x, kernel, stride, padding, count_include_pad=False)``."""
    out = depthwise_kernels.forward(x, _ones(x.shape[1], kernel), stride, padding, 1)
    return out.mul_(_reciprocal_sizes(x.shape[-1], kernel, stride, padding))


def avg_pool_backward(grad: torch.Tensor, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The gradient of :func:`avg_pool`'s input (``x`` gives its shape)."""
    scaled = grad * _reciprocal_sizes(x.shape[-1], kernel, stride, padding)
    return depthwise_kernels.input_gradient(scaled, x, _ones(x.shape[1], kernel), stride, padding, 1)


def max_pool_backward(grad: torch.Tensor, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The gradient of :func:`max_pool`'s input: each window's gradient to its first maximum."""
    x, grad = x.contiguous(), grad.contiguous()
    out = torch.zeros_like(x)
    _max_pool_backward(x.data_ptr(), grad.data_ptr(), out.data_ptr(), x.shape[0] * x.shape[1], x.shape[-1], kernel,
                       grad.shape[-1], stride, padding)
    return out


@compiled_in_order  # NaNs must not be compiled away (fast math assumes there are none)
def _row_maxima(x, x_base, maxima, length, kernel, out_length, stride, padding):  # pragma: no cover - compiled
    """``maxima`` = the row's window maxima, a NaN taken as the maximum (as torch), one vectorised loop a tap."""
    for j in range(out_length):
        maxima[j] = -np.inf
    step = np.uint64(stride)
    for t in range(kernel):
        first, last = depthwise_kernels.span(length, out_length, t - padding, stride)
        at, out_at = x_base + np.uint64(first * stride + t - padding), np.uint64(first)
        for j in range(np.uint64(last - first)):
            v, m = x[at + j * step], maxima[out_at + j]
            maxima[out_at + j] = v if (v > m) | (v != v) else m


@compiled_in_order
def _max_pool_backward(x_at, grad_at, grad_x_at, rows, length, kernel, out_length, stride,
                       padding):  # pragma: no cover - compiled
    """Adds the output's gradient into ``grad_x_at`` (zeros) at each window's first position equal to its
    maximum (a window whose maximum is NaN passes none)."""
    x, grad_x = floats(x_at, rows * length), floats(grad_x_at, rows * length)
    grad = floats(grad_at, rows * out_length)
    maxima = np.empty(out_length, np.float32)
    open_ = np.empty(out_length, np.float32)  # 1 where no earlier position of the window held the maximum
    step = np.uint64(stride)
    for row in range(rows):
        base, out_base = np.uint64(row * length), np.uint64(row * out_length)
        _row_maxima(x, base, maxima, length, kernel, out_length, stride, padding)
        open_[:] = 1.0
        for t in range(kernel):  # branch-free, so that the loops vectorise
            first, last = depthwise_kernels.span(length, out_length, t - padding, stride)
            at, out_at = base + np.uint64(first * stride + t - padding), np.uint64(first)
            for j in range(np.uint64(last - first)):
                hit = np.float32(x[at + j * step] == maxima[out_at + j]) * open_[out_at + j]
                grad_x[at + j * step] += hit * grad[out_base + out_at + j]
                open_[out_at + j] -= hit
