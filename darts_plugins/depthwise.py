"""Depthwise convolution with a faster input gradient on CPU.

PyTorch's CPU kernels for the input gradient of a dilated depthwise convolution are slow (1 to 3 ms at
stride 1 and 9 to 30 ms at stride 2 for DARTS' ``dil_conv`` on a 32x32 batch, against 0.3 to 0.7 ms
undilated). The input gradient of a convolution is the convolution of the (zero-upsampled, if strided)
output gradient with the flipped kernel, at stride 1, and a dilated convolution whose stride and padding
are multiples of the dilation reads one sub-grid only: its input gradient is an undilated one there, and
zero elsewhere. Computed that way, the numbers are the same and 4 to 12 times faster. Undilated strided
convolutions use PyTorch's transposed convolution, which is fast.

PyTorch's weight gradient is slow for dilated kernels too (4 to 11 ms for ``dil_conv_3x3``/``5x5`` on a
16x16x32x32 batch on an AVX2 CPU, against 0.3 ms undilated). A dilation-``d`` convolution whose padding is a
multiple of ``d`` is an undilated one on every ``d``-th element: at stride 1, on the ``d``^n interleaved
sub-grids stacked along the batch (space to batch; for channels-last images the column sub-grids become
groups of channels instead, a view, and only the row sub-grids are copied); at a stride that is a multiple of
``d``, on the one sub-grid it reads. The weight gradient is taken there, by PyTorch's kernel, on an input
padded beforehand where it is narrower than the kernel (oneDNN's fast kernel needs it at least a kernel wide).

oneDNN's fast depthwise weight-gradient kernel takes kernels at most 3 wide along the last dimension; wider
ones (5 or 7 wide) go to a generic grouped kernel, 3 to 9 times slower. A 2D kernel's weight gradient is
therefore taken in column pieces at most 3 wide, each on the input shifted to the piece's first column; a 1D
one with the sequence along the first of two dimensions, where the kernel may be tall.

A separable convolution (depthwise, then pointwise) is one autograd node that keeps only its input: the
depthwise output, which only the pointwise weight gradient reads, is computed again there, and a pass that
wants no weight gradient (a finite-difference pass) does not compute it at all. A search step then keeps a
third less (610 against 400 MiB of saved activations on the ``cnn-c8`` supernet).

Sequences (float32, CPU) take numba kernels instead (:mod:`darts_plugins.depthwise_kernels`),
up to 8 times faster than oneDNN's 1D convolutions on P3B5's batches (least at length 32), and the
pointwise half is a matrix product (:mod:`darts_plugins.pointwise`).

Under double backward (the exact second-order architecture gradient) everything is computed with
differentiable torch operations, so it works through it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darts.kernels import applies
from darts_plugins import depthwise_kernels
from darts_plugins.pointwise import pointwise_product, pointwise_product_backward

#: the widest kernel (along the last dimension) that oneDNN's depthwise weight-gradient kernel takes
FAST_WIDTH = 3


def _conv(ndim: int):
    return (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]


def _conv_transpose(ndim: int):
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[ndim - 1]


def _kernels_apply(*tensors: torch.Tensor) -> bool:
    """Whether the numba kernels compute (sequences, float32, CPU), not torch: never where autograd records
    (double backward), as the kernels are not differentiable."""
    return not torch.is_grad_enabled() and depthwise_kernels.usable(*tensors)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """A depthwise convolution's output: the numba kernel's for sequences outside autograd, else torch's."""
    if _kernels_apply(x, weight):
        return depthwise_kernels.forward(x, weight, stride, padding, dilation)
    return _conv(x.dim() - 2)(x, weight, None, stride, padding, dilation, x.shape[1])


def upsampled(grad: torch.Tensor, stride: int) -> torch.Tensor:
    """``grad`` with ``stride - 1`` zeros between neighbours along every spatial dimension."""
    if stride == 1:
        return grad
    ndim = grad.dim() - 2
    shape = (*grad.shape[:2], *[(n - 1) * stride + 1 for n in grad.shape[2:]])
    out = grad.new_zeros(shape)
    if ndim == 2 and grad.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    out[(slice(None), slice(None), *[slice(None, None, stride)] * ndim)] = grad
    return out


def space_to_batch(t: torch.Tensor, d: int) -> torch.Tensor:
    """The ``d``^n interleaved sub-grids of ``t`` (batch, channels, *n sizes) stacked along the batch, each
    size zero-padded at its end to a multiple of ``d``; the memory format (channels-last or not) is kept."""
    ndim = t.dim() - 2
    pads = [p for size in reversed(t.shape[2:]) for p in (0, -size % d)]
    if any(pads):
        t = F.pad(t, pads)
    grids = [size // d for size in t.shape[2:]]
    split = t.reshape(*t.shape[:2], *[n for g in grids for n in (g, d)])  # a view: dims N, C, g1, d, g2, d, ...
    phases, grid_dims = [3 + 2 * i for i in range(ndim)], [2 + 2 * i for i in range(ndim)]
    if ndim > 1 and t.is_contiguous(memory_format=torch.channels_last if ndim == 2 else torch.channels_last_3d):
        stacked = split.permute(0, *phases, *grid_dims, 1).reshape(-1, *grids, t.shape[1])
        return stacked.permute(0, ndim + 1, *range(1, ndim + 1))
    return split.permute(0, *phases, 1, *grid_dims).reshape(-1, t.shape[1], *grids)


def phases_as_channels(t: torch.Tensor, d: int) -> torch.Tensor:
    """A channels-last image's ``d``x``d`` interleaved sub-grids, for an undilated problem: the ``d`` column
    phases of every row as ``d`` groups of channels (a view), the ``d`` row phases stacked along the batch
    (one copy, in runs of whole rows). (batch, channels, height, width) becomes (d batch, d channels,
    height / d, width / d), each size zero-padded at its end to a multiple of ``d``.

    :func:`space_to_batch` stacks all ``d``^2 sub-grids along the batch instead, a copy in runs of one pixel's
    channels: 0.18 ms for a 32x8x32x32 batch in cache, and 1.3 ms in a search step's profile, where this copy
    takes 0.06 to 0.08 ms in cache."""
    pads = [0, -t.shape[3] % d, 0, -t.shape[2] % d]
    if any(pads):
        t = F.pad(t, pads).contiguous(memory_format=torch.channels_last)
    batch, channels, height, width = t.shape
    rows = t.permute(0, 2, 3, 1).reshape(batch, height // d, d, width * channels)  # a view: (N, g1, p1, row)
    stacked = rows.transpose(1, 2).reshape(batch * d, height // d, width // d, d * channels)
    return stacked.permute(0, 3, 1, 2)


def input_gradient(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                   dilation: int) -> torch.Tensor:
    """The gradient of a depthwise convolution's input (``x`` gives its shape and layout)."""
    if _kernels_apply(grad, x, weight):
        return depthwise_kernels.input_gradient(grad, x, weight, stride, padding, dilation)
    ndim, channels, kernel = x.dim() - 2, x.shape[1], weight.shape[2:]
    grid = (slice(None), slice(None), *[slice(None, None, dilation)] * ndim)
    if dilation > 1 and stride % dilation == 0 and padding % dilation == 0:
        # it reads every dilation-th element only: an undilated convolution on that sub-grid, zeros elsewhere
        inner = input_gradient(grad, x[grid], weight, stride // dilation, padding // dilation, 1)
        out = torch.zeros_like(x)  # in x's layout
        out[grid] = inner
        return out
    if stride > 1 and dilation == 1:  # PyTorch's transposed convolution is fast here
        output_padding = [size + 2 * padding - k - (n - 1) * stride
                          for size, n, k in zip(x.shape[2:], grad.shape[2:], kernel)]
        return _conv_transpose(ndim)(grad, weight, None, stride, padding, output_padding, channels)
    up = upsampled(grad, stride)
    pads = []
    for size, n, k in reversed(list(zip(x.shape[2:], up.shape[2:], kernel))):
        before = dilation * (k - 1) - padding
        after = before + size - (n + 2 * before - dilation * (k - 1))
        pads += [before, after]
    flipped = weight.flip(list(range(2, 2 + ndim)))
    if len(set(pads)) == 1:  # the same padding everywhere (stride 1): the convolution pads, no copy
        return _conv(ndim)(up, flipped, None, 1, pads[0], dilation, channels)
    return _conv(ndim)(F.pad(up, pads), flipped, None, 1, 0, dilation, channels)


def weight_gradient(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                    dilation: int) -> torch.Tensor:
    """The gradient of a depthwise convolution's weight, on the undilated problem where there is one."""
    if _kernels_apply(grad, x, weight):
        return depthwise_kernels.weight_gradient(grad, x, weight, stride, padding, dilation)
    if dilation > 1 and padding % dilation == 0 and stride == 1 and x.dim() == 4 and all(
            t.is_contiguous(memory_format=torch.channels_last) for t in (grad, x)):
        # the column phases as channel groups: each group's gradient is its own, summed here
        d = dilation
        grad_w = weight_gradient(phases_as_channels(grad, d), phases_as_channels(x, d), weight.repeat(d, 1, 1, 1),
                                 1, padding // d, 1)
        return grad_w.view(d, *weight.shape).sum(0)
    kernel = weight.shape[2:]
    if dilation > 1 and padding % dilation == 0:
        if stride == 1:
            grad, x = space_to_batch(grad, dilation), space_to_batch(x, dilation)
            stride, padding, dilation = 1, padding // dilation, 1
        elif stride % dilation == 0:
            x = x[(slice(None), slice(None), *[slice(None, None, dilation)] * (x.dim() - 2))]
            stride, padding, dilation = stride // dilation, padding // dilation, 1
    ndim = x.dim() - 2
    if dilation == 1 and padding and any(size < k for size, k in zip(x.shape[2:], kernel)):
        # oneDNN's fast kernel needs an input at least a kernel wide (a sub-grid of an 8x8 input is 4 wide),
        # so the input is padded here: 4 to 8 times faster than the generic kernel
        x, padding = F.pad(x, [padding] * 2 * ndim), 0
    if dilation == 1 and weight.shape[-1] > FAST_WIDTH:
        if ndim == 1:  # the sequence along the first of two dimensions: the kernel is tall, not wide
            return _torch_weight_gradient(grad.unsqueeze(-1), x.unsqueeze(-1), weight.unsqueeze(-1), [stride, 1],
                                          [padding, 0]).squeeze(-1)
        if ndim == 2:
            return _in_column_pieces(grad, x, weight, stride, padding)
    return _torch_weight_gradient(grad, x, weight, [stride] * ndim, [padding] * ndim, [dilation] * ndim)


def _torch_weight_gradient(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: list[int],
                           padding: list[int], dilation: list[int] | None = None) -> torch.Tensor:
    ndim = x.dim() - 2
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, stride, padding, dilation or [1] * ndim, False, [0] * ndim, x.shape[1],
        [False, True, False])[1]


def _in_column_pieces(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: int,
                      padding: int) -> torch.Tensor:
    """The weight gradient of an undilated 2D depthwise convolution, taken for the kernel's columns in pieces
    at most :data:`FAST_WIDTH` wide. A piece starting at column ``start`` reads the input from column
    ``start - padding`` on: the input is padded (or cropped) by ``padding - start`` on the left, and on the
    right by what keeps the output width, unless the piece is centred and the convolution can pad."""
    width, in_width, out_width = weight.shape[-1], x.shape[-1], grad.shape[-1]
    pieces = []
    for start in range(0, width, FAST_WIDTH):
        columns = min(FAST_WIDTH, width - start)
        left = padding - start
        right = (out_width - 1) * stride + columns - in_width - left
        if left == right >= 0:
            shifted, pad = x, left
        else:
            shifted, pad = F.pad(x, (left, right)), 0
        pieces.append(_torch_weight_gradient(grad, shifted, weight[..., start:start + columns], [stride] * 2,
                                             [padding, pad]))
    return torch.cat(pieces, dim=-1)


class _DepthwiseConv(torch.autograd.Function):
    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, x, weight, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.options = stride, padding, dilation
        return depthwise_conv(x, weight, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.options
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = input_gradient(grad, x, weight, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            grad_w = weight_gradient(grad, x, weight, stride, padding, dilation)
        return grad_x, grad_w, None, None, None


class DepthwiseConv(nn.Module):
    """A depthwise convolution (``groups`` = channels, no bias) over ``ndim`` spatial dimensions; the same
    numbers as ``nn.ConvNd(..., groups=channels)``, with the faster input gradient of this module's doc."""

    def __init__(self, ndim: int, channels: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1) -> None:
        super().__init__()
        if dilation * (kernel - 1) < padding:
            raise ValueError(f"padding {padding} exceeds the kernel's reach {dilation * (kernel - 1)}")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        reference = getattr(nn, f"Conv{ndim}d")(channels, channels, kernel, stride, padding, dilation,
                                                groups=channels, bias=False)  # for its initialisation
        self.weight = reference.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if applies(x, self.weight):
            return _DepthwiseConv.apply(x, self.weight, self.stride, self.padding, self.dilation)
        return _conv(x.dim() - 2)(x, self.weight, None, self.stride, self.padding, self.dilation, x.shape[1])

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[0]}, kernel={tuple(self.weight.shape[2:])}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}")


class _SeparableConv(torch.autograd.Function):
    """(A ReLU,) a depthwise convolution and a pointwise (1-wide) one, keeping only the input for backward:
    the ReLU's and the depthwise convolution's outputs, which the weight gradients read, are computed
    again there."""

    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, x, depthwise, pointwise, stride, padding, dilation, relu):
        ctx.save_for_backward(x, depthwise, pointwise)
        ctx.options = stride, padding, dilation, relu
        y = torch.relu(x) if relu else x
        return pointwise_product(depthwise_conv(y, depthwise, stride, padding, dilation), pointwise)

    @staticmethod
    def backward(ctx, grad):
        x, depthwise, pointwise = ctx.saved_tensors
        stride, padding, dilation, relu = ctx.options
        want_x, want_depthwise, want_pointwise = ctx.needs_input_grad[:3]
        y = torch.relu(x) if relu and (want_depthwise or want_pointwise) else x  # what the convolutions read
        grad_x = grad_depthwise = grad_pointwise = grad_middle = None
        want_middle = want_x or want_depthwise
        if want_pointwise:  # the depthwise output again, for the pointwise weight gradient
            middle = depthwise_conv(y, depthwise, stride, padding, dilation)
            grad_middle, grad_pointwise = pointwise_product_backward(grad, middle, pointwise, want_middle)
        elif want_middle:
            grad_middle = pointwise_product_backward(grad, None, pointwise, True, want_weight=False)[0]
        if want_x:
            grad_x = input_gradient(grad_middle, y, depthwise, stride, padding, dilation)
            if relu:
                grad_x = torch.ops.aten.threshold_backward(grad_x, x, 0)
        if want_depthwise:
            grad_depthwise = weight_gradient(grad_middle, y, depthwise, stride, padding, dilation)
        return grad_x, grad_depthwise, grad_pointwise, None, None, None, None


def separable_conv(x: torch.Tensor, depthwise: torch.Tensor, pointwise: torch.Tensor, stride: int = 1,
                   padding: int = 0, dilation: int = 1, relu: bool = False) -> torch.Tensor:
    """``conv(conv(relu(x) if relu else x, depthwise, groups=channels, ...), pointwise)``, keeping only ``x``
    and the weights for the backward pass (see :class:`SeparableConv`) where the kernel seam lets darts' CPU
    machinery compute (:func:`darts.kernels.applies`), else with torch's operations."""
    if applies(x, depthwise, pointwise):
        return _SeparableConv.apply(x, depthwise, pointwise, stride, padding, dilation, relu)
    conv = _conv(x.dim() - 2)
    y = conv(torch.relu(x) if relu else x, depthwise, None, stride, padding, dilation, x.shape[1])
    return conv(y, pointwise)


class SeparableConv(nn.Module):
    """A depthwise convolution then a pointwise one, as one autograd node that keeps only its input: the
    depthwise output is computed again for the pointwise weight gradient instead of kept.

    With ``relu``, a ReLU first, in the same node: it keeps the ReLU's input, not its output. After a
    BatchNorm that keeps its output (:class:`darts.search_space.weighted_norm.LeanBatchNorm2d`), that is the
    same tensor, so the two keep one tensor between them."""

    def __init__(self, ndim: int, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, relu: bool = False) -> None:
        super().__init__()
        self.relu = relu
        self.depthwise = DepthwiseConv(ndim, c_in, kernel, stride, padding, dilation)
        self.pointwise = getattr(nn, f"Conv{ndim}d")(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dw = self.depthwise
        return separable_conv(x, dw.weight, self.pointwise.weight, dw.stride, dw.padding, dw.dilation, self.relu)

    def extra_repr(self) -> str:
        return "relu=True" if self.relu else ""
