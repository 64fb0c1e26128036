"""Max and average pooling of sequences and channels-last images (float32 CPU tensors), single-threaded numba.

PyTorch's CPU pooling is slow for DARTS' 3-wide windows. Sequences: on P3B5's 64x8x128 to 64x32x32 batches,
``avg_pool1d`` (padding not counted) takes about 0.6 ms forward and 0.5 ms backward, and the backward pass
of max pooling without indices (:mod:`darts_plugins.pooling`, torch's masks) about 1 ms, against 10 us for
an addition of two such tensors. Here the average is a depthwise convolution with unit weights
(:mod:`darts_plugins.depthwise_kernels`) scaled by the reciprocal window sizes: 40 to 90 us each way. Max
pooling's backward pass finds each window's maximum again and sends the gradient to the first position that
holds it, as torch's indices would, in branch-free loops: 170 to 300 us. (Max pooling's forward pass stays
torch's, which is fast for sequences.)

Images: on channels-last 32x8x32x32 batches (``cnn-c8``'s first cells) torch takes 1.4 to 1.8 ms for
each of the 3x3 max pooling, the average pooling and its gradient at stride 1, 3.6 ms for the max with
PC-DARTS' 2 channels. The kernels run over image rows, where at stride 1 an output's channels and its
neighbours' are consecutive: one flat vectorised loop per tap, 0.3 to 0.35 ms (0.2 ms with 2 channels).
Strided windows loop over the outputs: 1 to 1.9 times faster than torch; max pooling's strided backward
pass stays torch's, twice as fast there.

They apply (:func:`usable`, :func:`usable_2d`) to 3D float32 CPU tensors and channels-last 4D ones, numba
importable, as the kernel seam decides (:func:`darts.kernels.numba_applies`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from darts.compiled import compiled, compiled_in_order, floats
from darts.kernels import numba_applies
from darts_plugins import depthwise_kernels


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the sequence kernels take these tensors (batch, channels, length)."""
    return all(t.dim() == 3 for t in tensors) and numba_applies(*tensors)


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


# --- images: (batch, channels, height, width) in the channels-last layout of darts' 2D family ---------------

def usable_2d(*tensors: torch.Tensor) -> bool:
    """Whether the 2D kernels take these tensors (channels-last float32 CPU images)."""
    return (all(t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) for t in tensors)
            and numba_applies(*tensors))


def _channels_last(shape: tuple[int, ...], like: torch.Tensor, zeros: bool = False) -> torch.Tensor:
    out = torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)
    return out.zero_() if zeros else out


def _pooled_shape(x: torch.Tensor, kernel: int, stride: int, padding: int) -> tuple[int, ...]:
    return (*x.shape[:2], *(depthwise_kernels.output_length(n, kernel, stride, padding, 1) for n in x.shape[2:]))


def _arguments(x: torch.Tensor, out_shape: tuple[int, ...], kernel: int, stride: int, padding: int) -> tuple:
    """The kernels' view: (batch, height, width, channels) values in, (batch, out height, out width, channels)
    out."""
    batch, channels, height, width = x.shape
    return batch, height, width, channels, kernel, *out_shape[2:], stride, padding


def avg_pool_2d(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """``avg_pool2d(x, kernel, stride, padding, count_include_pad=False)``."""
    shape = _pooled_shape(x, kernel, stride, padding)
    out = _channels_last(shape, x)
    _avg_pool_2d(x.data_ptr(), out.data_ptr(), *_arguments(x, shape, kernel, stride, padding),
                 *_reciprocals(x, kernel, stride, padding))
    return out


def avg_pool_2d_backward(grad: torch.Tensor, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The gradient of :func:`avg_pool_2d`'s input (``x`` gives its shape)."""
    grad, grad_x = grad.contiguous(memory_format=torch.channels_last), _channels_last(x.shape, x, zeros=True)
    _avg_pool_2d_backward(grad.data_ptr(), grad_x.data_ptr(), *_arguments(x, grad.shape, kernel, stride, padding),
                          *_reciprocals(x, kernel, stride, padding))
    return grad_x


def max_pool_2d(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """``max_pool2d(x, kernel, stride, padding)`` (a NaN in a window is its maximum)."""
    shape = _pooled_shape(x, kernel, stride, padding)
    out = _channels_last(shape, x)
    _max_pool_2d(x.data_ptr(), out.data_ptr(), *_arguments(x, shape, kernel, stride, padding))
    return out


def max_pool_2d_backward(grad: torch.Tensor, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The gradient of :func:`max_pool_2d`'s input: each window's gradient to its first maximum (in row-major
    order within the window, as torch's indices); a window whose maximum is NaN passes none."""
    grad, grad_x = grad.contiguous(memory_format=torch.channels_last), _channels_last(x.shape, x, zeros=True)
    _max_pool_2d_backward(x.data_ptr(), grad.data_ptr(), grad_x.data_ptr(),
                          *_arguments(x, grad.shape, kernel, stride, padding))
    return grad_x


def _reciprocals(x: torch.Tensor, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """The addresses of 1 / the window sizes along the height and the width (cached tensors)."""
    return tuple(_reciprocal_sizes(n, kernel, stride, padding).data_ptr() for n in x.shape[2:])


@compiled
def _add_runs(target, target_at, target_step, source, source_at, source_step, count,
              block):  # pragma: no cover - compiled
    """target[target_at + j target_step + c] += source[source_at + j source_step + c] for j < ``count``, c <
    ``block``: one flat vectorised loop where both steps are ``block`` (consecutive runs)."""
    if target_step == block and source_step == block:
        for q in range(count * block):
            target[target_at + q] += source[source_at + q]
    else:
        for j in range(count):
            for c in range(block):
                target[target_at + j * target_step + c] += source[source_at + j * source_step + c]


@compiled
def _tap(width, out_width, t, stride, padding, lanes):  # pragma: no cover - compiled
    """For tap ``t`` of a window row: the offsets of its first input and first output in a row, and how many
    outputs read inside the row."""
    first, last = depthwise_kernels.span(width, out_width, t - padding, stride)
    block = np.uint64(lanes)
    return np.uint64(first * stride + t - padding) * block, np.uint64(first) * block, np.uint64(last - first)


@compiled
def _gather_add(x, x_row, out, out_row, width, lanes, kernel, out_width, stride,
                padding):  # pragma: no cover - compiled
    """out[out_row: one output row] += the input row at ``x_row`` under each tap of a window row (at stride
    1, an output's lanes and its neighbours' are consecutive: one flat loop)."""
    block = np.uint64(lanes)
    for t in range(kernel):
        at, out_at, count = _tap(width, out_width, t, stride, padding, lanes)
        _add_runs(out, out_row + out_at, block, x, x_row + at, np.uint64(stride) * block, count, block)


@compiled
def _scatter_add(grad, grad_row, grad_x, x_row, width, lanes, kernel, out_width, stride,
                 padding):  # pragma: no cover - compiled
    """The transpose of :func:`_gather_add`: each output's ``grad`` added to the inputs under its taps."""
    block = np.uint64(lanes)
    for t in range(kernel):
        at, out_at, count = _tap(width, out_width, t, stride, padding, lanes)
        _add_runs(grad_x, x_row + at, np.uint64(stride) * block, grad, grad_row + out_at, block, count, block)


@compiled_in_order
def _gather_max(x, x_row, out, out_row, width, lanes, kernel, out_width, stride,
                padding):  # pragma: no cover - compiled
    """:func:`_gather_add` with the maximum instead of the sum: ``np.maximum``, which takes a NaN as the
    maximum (as torch) and vectorises, where a comparison and a NaN check did not (3 to 4 times slower)."""
    block = np.uint64(lanes)
    for t in range(kernel):
        at, out_at, count = _tap(width, out_width, t, stride, padding, lanes)
        at, out_at = x_row + at, out_row + out_at
        if stride == 1:
            for q in range(count * block):
                out[out_at + q] = np.maximum(x[at + q], out[out_at + q])
        else:
            step = np.uint64(stride) * block
            for j in range(count):
                for c in range(block):
                    out[out_at + j * block + c] = np.maximum(x[at + j * step + c], out[out_at + j * block + c])


@compiled
def _avg_pool_2d(x_at, out_at, rows, height, width, lanes, kernel, out_height, out_width, stride, padding,
                 reciprocal_h_at, reciprocal_w_at):  # pragma: no cover - compiled
    x, out = floats(x_at, rows * height * width * lanes), floats(out_at, rows * out_height * out_width * lanes)
    reciprocal_h, reciprocal_w = floats(reciprocal_h_at, out_height), floats(reciprocal_w_at, out_width)
    line, out_line = width * lanes, out_width * lanes
    for r in range(rows):
        for i in range(out_height):
            o = np.uint64((r * out_height + i) * out_line)
            for q in range(np.uint64(out_line)):
                out[o + q] = 0.0
            for t in range(kernel):
                h = i * stride + t - padding
                if 0 <= h < height:
                    _gather_add(x, np.uint64((r * height + h) * line), out, o, width, lanes, kernel, out_width,
                                stride, padding)
            for j in range(out_width):
                scale = reciprocal_h[i] * reciprocal_w[j]
                for c in range(lanes):
                    out[o + np.uint64(j * lanes + c)] *= scale


@compiled
def _avg_pool_2d_backward(grad_at, grad_x_at, rows, height, width, lanes, kernel, out_height, out_width, stride,
                          padding, reciprocal_h_at, reciprocal_w_at):  # pragma: no cover - compiled
    """Adds each output's gradient over its window size into ``grad_x_at`` (zeros) under its window."""
    grad_x, grad = floats(grad_x_at, rows * height * width * lanes), floats(grad_at, rows * out_height * out_width * lanes)
    reciprocal_h, reciprocal_w = floats(reciprocal_h_at, out_height), floats(reciprocal_w_at, out_width)
    line, out_line = width * lanes, out_width * lanes
    scaled = np.empty(out_line, np.float32)
    for r in range(rows):
        for i in range(out_height):
            o = np.uint64((r * out_height + i) * out_line)
            for j in range(out_width):
                scale = reciprocal_h[i] * reciprocal_w[j]
                for c in range(lanes):
                    scaled[j * lanes + c] = grad[o + np.uint64(j * lanes + c)] * scale
            for t in range(kernel):
                h = i * stride + t - padding
                if 0 <= h < height:
                    _scatter_add(scaled, np.uint64(0), grad_x, np.uint64((r * height + h) * line), width, lanes,
                                 kernel, out_width, stride, padding)


@compiled_in_order
def _window_maxima(x, r, i, maxima, maxima_at, height, width, lanes, kernel, out_width, stride,
                   padding):  # pragma: no cover - compiled
    """``maxima`` from ``maxima_at`` on = the maxima of output row ``i``'s windows in image ``r``."""
    for q in range(np.uint64(out_width * lanes)):
        maxima[maxima_at + q] = -np.inf
    for t in range(kernel):
        h = i * stride + t - padding
        if 0 <= h < height:
            _gather_max(x, np.uint64((r * height + h) * width * lanes), maxima, maxima_at, width, lanes, kernel,
                        out_width, stride, padding)


@compiled_in_order
def _max_pool_2d(x_at, out_at, rows, height, width, lanes, kernel, out_height, out_width, stride,
                 padding):  # pragma: no cover - compiled
    x, out = floats(x_at, rows * height * width * lanes), floats(out_at, rows * out_height * out_width * lanes)
    for r in range(rows):
        for i in range(out_height):
            _window_maxima(x, r, i, out, np.uint64((r * out_height + i) * out_width * lanes), height, width, lanes,
                           kernel, out_width, stride, padding)


@compiled_in_order
def _max_pool_2d_backward(x_at, grad_at, grad_x_at, rows, height, width, lanes, kernel, out_height, out_width,
                          stride, padding):  # pragma: no cover - compiled
    """Adds each output's gradient into ``grad_x_at`` (zeros) at its window's first position (row-major)
    equal to its maximum, in branch-free loops."""
    size = rows * height * width * lanes
    x, grad_x, grad = floats(x_at, size), floats(grad_x_at, size), floats(grad_at, rows * out_height * out_width * lanes)
    line, out_line = width * lanes, out_width * lanes
    block = np.uint64(lanes)
    maxima = np.empty(out_line, np.float32)
    open_ = np.empty(out_line, np.float32)  # 1 where no earlier position of the window held the maximum
    for r in range(rows):
        for i in range(out_height):
            _window_maxima(x, r, i, maxima, np.uint64(0), height, width, lanes, kernel, out_width, stride, padding)
            open_[:] = 1.0
            o = np.uint64((r * out_height + i) * out_line)
            for t in range(kernel):
                h = i * stride + t - padding
                if not 0 <= h < height:
                    continue
                x_row = np.uint64((r * height + h) * line)
                for u in range(kernel):
                    at, out_at, count = _tap(width, out_width, u, stride, padding, lanes)
                    at += x_row
                    if stride == 1:
                        for q in range(count * block):
                            hit = np.float32(x[at + q] == maxima[out_at + q]) * open_[out_at + q]
                            grad_x[at + q] += hit * grad[o + out_at + q]
                            open_[out_at + q] -= hit
                        continue
                    step = np.uint64(stride) * block
                    for j in range(count):
                        for c in range(block):
                            k, m = at + j * step + c, out_at + j * block + c
                            hit = np.float32(x[k] == maxima[m]) * open_[m]
                            grad_x[k] += hit * grad[o + m]
                            open_[m] -= hit
