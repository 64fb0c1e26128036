"""Max pooling that keeps only its input for the backward pass, and average pooling without the padding.

torch's max pooling keeps its input and the int64 index of every maximum: twice the output's size more. The
indices are cheap to find again from the input, which a search cell keeps anyway (the skip connection and
the average pooling read the same state), so this module finds them again in the backward pass (in 1D it
routes the gradient with masks). Values and gradients are torch's; under double backward the backward pass
is written with differentiable operations.

Float32 sequences and channels-last images (darts' 2D layout) run in :mod:`darts_plugins.pooling_kernels`'
numba kernels, average pooling (padding not counted, as DARTS') both ways and max pooling's backward pass
(in 2D its forward pass too, and its backward pass at stride 1): torch's are 2 to 18 times slower there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darts.kernels import applies
from darts_plugins import pooling_kernels

_BACKWARD = {2: torch.ops.aten.max_pool2d_with_indices_backward, 3: torch.ops.aten.max_pool3d_with_indices_backward}
_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class _MaxPool(torch.autograd.Function):
    """2D and 3D: the backward pass finds the indices again and runs torch's gradient op; channels-last float32
    images take :mod:`darts_plugins.pooling_kernels`' kernels instead (the backward pass at stride 1)."""

    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.save_for_backward(x)
        ctx.options = kernel, stride, padding
        if pooling_kernels.usable_2d(x):
            return pooling_kernels.max_pool_2d(x, kernel, stride, padding)
        return _POOL[x.dim() - 2](x, kernel, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.options[1] == 1 and not torch.is_grad_enabled() and pooling_kernels.usable_2d(grad, x):
            return pooling_kernels.max_pool_2d_backward(grad, x, *ctx.options), None, None, None
        ndim = x.dim() - 2
        kernel, stride, padding = ([v] * ndim for v in ctx.options)
        with torch.no_grad():
            _, indices = _POOL[ndim](x, kernel, stride, padding, return_indices=True)
        grad_x = _BACKWARD[ndim](grad, x, kernel, stride, padding, [1] * ndim, False, indices)
        return grad_x, None, None, None


class _MaxPool1d(_MaxPool):
    """1D: torch's kernel without indices is 50 times faster than with them, so the backward pass routes the
    gradient with masks instead: to the first position of each window that holds the window's maximum,
    as torch's indices do."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        kernel, stride, padding = ctx.options
        if not torch.is_grad_enabled() and pooling_kernels.usable(grad, x):
            return pooling_kernels.max_pool_backward(grad, x, kernel, stride, padding), None, None, None
        with torch.no_grad():
            out = F.max_pool1d(x, kernel, stride, padding)
            padded = F.pad(x, (padding, padding), value=float("-inf"))
        count = out.shape[-1]
        grad_padded = grad.new_zeros(padded.shape)
        taken = torch.zeros_like(out, dtype=torch.bool)
        for offset in range(kernel):
            end = offset + stride * (count - 1) + 1
            hit = padded[..., offset:end:stride] == out
            hit &= ~taken
            taken |= hit
            positions = torch.arange(offset, end, stride, device=x.device)
            grad_padded = grad_padded.index_add(-1, positions, grad * hit)
        return grad_padded[..., padding:padding + x.shape[-1]], None, None, None


class _Pool(nn.Module):
    """A pooling over ``ndim`` (1 to 3) spatial dimensions; ``kind`` names it in errors."""

    kind = "pooling"
    parameter_free = True  # its output depends on its input alone: a mixed op computes it once per state

    def __init__(self, ndim: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"{self.kind} needs 1, 2 or 3 spatial dimensions, got {ndim}")
        self.ndim, self.kernel, self.stride, self.padding = ndim, kernel, stride, padding

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != self.ndim + 2:
            raise ValueError(f"{self.ndim}D {self.kind} needs (batch, channels, {self.ndim} spatial) inputs, "
                             f"got shape {tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}"


class MaxPool(_Pool):
    """Max pooling over ``ndim`` (1 to 3) spatial dimensions."""

    kind = "max pooling"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not applies(x):
            return _POOL[self.ndim](x, self.kernel, self.stride, self.padding)
        function = _MaxPool1d if self.ndim == 1 else _MaxPool
        return function.apply(x, self.kernel, self.stride, self.padding)


class _AvgPool(torch.autograd.Function):
    """Average pooling of sequences and images, padding not counted: the numba kernels where they apply."""

    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.shape, ctx.layout, ctx.options = x.shape, _layout(x), (kernel, stride, padding)  # keeps no tensor
        if x.dim() == 3 and pooling_kernels.usable(x):
            return pooling_kernels.avg_pool(x, kernel, stride, padding)
        if pooling_kernels.usable_2d(x):
            return pooling_kernels.avg_pool_2d(x, kernel, stride, padding)
        return _AVG_POOL[x.dim() - 2](x, kernel, stride, padding, count_include_pad=False)

    @staticmethod
    def backward(ctx, grad):
        kernel, stride, padding = ctx.options
        # the input's shape and layout are what the gradient reads
        x = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=ctx.layout)
        if not torch.is_grad_enabled():
            if x.dim() == 3 and pooling_kernels.usable(grad):
                return pooling_kernels.avg_pool_backward(grad, x, kernel, stride, padding), None, None, None
            if pooling_kernels.usable_2d(x):
                return pooling_kernels.avg_pool_2d_backward(grad, x, kernel, stride, padding), None, None, None
        # torch's own (differentiable) gradient; a sequence's is a 2D pooling's of one row
        if x.dim() == 3:
            grad_x = torch.ops.aten.avg_pool2d_backward(grad.unsqueeze(-2), x.unsqueeze(-2), [1, kernel],
                                                        [1, stride], [0, padding], False, False, None)
            return grad_x.squeeze(-2), None, None, None
        return torch.ops.aten.avg_pool2d_backward(grad, x, [kernel] * 2, [stride] * 2, [padding] * 2, False, False,
                                                  None), None, None, None


def _layout(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        else torch.contiguous_format


class AvgPool(_Pool):
    """Average pooling over ``ndim`` (1 to 3) spatial dimensions, the padding not counted in the average."""

    kind = "average pooling"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.ndim < 3 and applies(x):
            return _AvgPool.apply(x, self.kernel, self.stride, self.padding)
        return _AVG_POOL[self.ndim](x, self.kernel, self.stride, self.padding, count_include_pad=False)
