"""Depthwise convolution of sequences (contiguous float32 CPU tensors), single-threaded, compiled by numba.

On a CPU, PyTorch runs a depthwise ``conv1d`` through oneDNN as a 2D problem, which costs 100 to 200 us
for P3B5's 64x8x128 to 64x32x32 batches whatever the kernel, and its weight gradient 130 to 380 us (dilated
ones the most). These kernels loop over each (sample, channel) row once per tap with a vectorised inner
loop: 30 to 130 us forward, and about as much for each gradient, on the same batches (AVX2, one thread).
Indices are unsigned, so that numba checks no negative index and the loops vectorise.

They apply (:func:`usable`) to 3D float32 CPU tensors, numba importable, as the kernel
seam decides (:func:`darts.kernels.numba_applies`); the callers (:mod:`darts_plugins.depthwise`) use PyTorch's
convolutions otherwise, and under double backward, where the gradients must be differentiable.
"""

from __future__ import annotations

import numpy as np
import torch

from darts.compiled import compiled, floats
from darts.kernels import numba_applies


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the kernels take these tensors (sequences: batch, channels, length)."""
    return all(t.dim() == 3 for t in tensors) and numba_applies(*tensors)


def output_length(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def forward(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """``conv1d(x, weight, None, stride, padding, dilation, groups=channels)``."""
    x, weight = x.contiguous(), weight.contiguous()
    batch, channels, length = x.shape
    kernel = weight.shape[-1]
    out = x.new_empty(batch, channels, output_length(length, kernel, stride, padding, dilation))
    _forward(x.data_ptr(), weight.data_ptr(), out.data_ptr(), batch, channels, length, kernel, out.shape[-1],
             stride, padding, dilation)
    return out


def input_gradient(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                   dilation: int) -> torch.Tensor:
    """The gradient of :func:`forward`'s input (``x`` gives its shape)."""
    grad, weight = grad.contiguous(), weight.contiguous()
    batch, channels, length = x.shape
    out = x.new_empty(batch, channels, length)
    _input_gradient(grad.data_ptr(), weight.data_ptr(), out.data_ptr(), batch, channels, length, weight.shape[-1],
                    grad.shape[-1], stride, padding, dilation)
    return out


def weight_gradient(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                    dilation: int) -> torch.Tensor:
    """The gradient of :func:`forward`'s weight (``weight`` gives its shape)."""
    grad, x = grad.contiguous(), x.contiguous()
    batch, channels, length = x.shape
    out = weight.new_empty(weight.shape)
    _weight_gradient(grad.data_ptr(), x.data_ptr(), out.data_ptr(), batch, channels, length, weight.shape[-1],
                     grad.shape[-1], stride, padding, dilation)
    return out


@compiled
def span(length, out_length, offset, stride):  # pragma: no cover - compiled
    """The outputs ``j`` (from, to) whose tap at ``offset`` reads inside the sequence: 0 <= j stride + offset
    < length."""
    first = 0 if offset >= 0 else (stride - 1 - offset) // stride
    last = (length - 1 - offset) // stride + 1 if length - 1 - offset >= 0 else 0
    return first, min(max(last, first), out_length)


@compiled
def _forward(x_at, w_at, out_at, batch, channels, length, kernel, out_length, stride, padding,
             dilation):  # pragma: no cover - compiled
    x, w = floats(x_at, batch * channels * length), floats(w_at, channels * kernel)
    out = floats(out_at, batch * channels * out_length)
    step = np.uint64(stride)
    for row in range(batch * channels):
        c = row % channels
        o = np.uint64(row * out_length)
        for j in range(out_length):
            out[o + np.uint64(j)] = 0.0
        for k in range(kernel):
            offset = k * dilation - padding
            first, last = span(length, out_length, offset, stride)
            tap, o_at, x_at_first = w[c * kernel + k], o + np.uint64(first), \
                np.uint64(row * length + first * stride + offset)
            if stride == 1:
                for j in range(np.uint64(last - first)):
                    out[o_at + j] += tap * x[x_at_first + j]
            else:
                for j in range(np.uint64(last - first)):
                    out[o_at + j] += tap * x[x_at_first + j * step]


@compiled
def _input_gradient(grad_at, w_at, out_at, batch, channels, length, kernel, out_length, stride, padding,
                    dilation):  # pragma: no cover - compiled
    grad, w = floats(grad_at, batch * channels * out_length), floats(w_at, channels * kernel)
    out = floats(out_at, batch * channels * length)
    step = np.uint64(stride)
    for row in range(batch * channels):
        c = row % channels
        base = np.uint64(row * length)
        for i in range(length):
            out[base + np.uint64(i)] = 0.0
        for k in range(kernel):
            offset = k * dilation - padding
            first, last = span(length, out_length, offset, stride)
            tap, g_at, o_at = w[c * kernel + k], np.uint64(row * out_length + first), \
                np.uint64(row * length + first * stride + offset)
            if stride == 1:
                for j in range(np.uint64(last - first)):
                    out[o_at + j] += tap * grad[g_at + j]
            else:
                for j in range(np.uint64(last - first)):
                    out[o_at + j * step] += tap * grad[g_at + j]


@compiled
def _weight_gradient(grad_at, x_at, out_at, batch, channels, length, kernel, out_length, stride, padding,
                     dilation):  # pragma: no cover - compiled
    grad, x = floats(grad_at, batch * channels * out_length), floats(x_at, batch * channels * length)
    out = floats(out_at, channels * kernel)
    step = np.uint64(stride)
    for c in range(channels):
        for k in range(kernel):
            offset = k * dilation - padding
            first, last = span(length, out_length, offset, stride)
            total = np.float32(0.0)
            for n in range(batch):
                row = n * channels + c
                g_at, x_at_first = np.uint64(row * out_length + first), np.uint64(row * length + first * stride + offset)
                if stride == 1:
                    for j in range(np.uint64(last - first)):
                        total += grad[g_at + j] * x[x_at_first + j]
                else:
                    for j in range(np.uint64(last - first)):
                        total += grad[g_at + j] * x[x_at_first + j * step]
            out[c * kernel + k] = total
