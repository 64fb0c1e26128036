"""1-wide convolutions of sequences as matrix products.

On a CPU, PyTorch runs a 1-wide ``conv1d`` through oneDNN, which pays for a 2D problem and a layout change at
every call: 130 to 250 us for a 64x8x128 to 64x32x32 batch with 8 to 32 channels, against 40 to 120 us for
the same product as ``weight @ x`` batched over the sequences (``bmm``; ``matmul`` copies), and its backward
pass 270 us to 1.7 ms against 170 to 200 us as two matrix products (autograd's own backward of the batched
product is slower: it expands the weight over the batch).

Images (and other dimensions) stay with torch's convolution: as matrix products of their (pixels, channels)
view, channels-last images were as fast as oneDNN's convolution in whole search steps (``cnn-c8``: plain and
second-order steps within 1 %; ``cnn-c16-b16``: within 3 %), so that rewrite was dropped. Sequences take the
matrix products where the kernel seam lets darts' machinery compute (:func:`darts.kernels.applies`: not on a
GPU, under autocast, while tracing or with ``DARTS_KERNELS=torch``).

The backward pass is written with matrix products, so double backward (the exact second-order step) works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darts.kernels import applies

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}

def pointwise_product(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``convNd(x, weight)`` for a 1-wide ``weight`` (out, in, 1, ...), without autograd (for use inside other
    autograd Functions): for sequences (batch, in, length) a batched matrix product."""
    if x.dim() != 3:
        return _CONV[x.dim() - 2](x, weight)
    w = weight.squeeze(-1)
    return torch.bmm(w.expand(x.shape[0], *w.shape), x)


def pointwise_product_backward(grad: torch.Tensor, x: torch.Tensor | None, weight: torch.Tensor, want_input: bool,
                               want_weight: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The gradients of :func:`pointwise_product`'s input and weight (``x`` is read for the weight's only), in
    differentiable operations."""
    ndim = grad.dim() - 2
    if ndim != 1:
        if not want_weight:
            return _CONV_TRANSPOSE[ndim](grad, weight) if want_input else None, None
        return tuple(torch.ops.aten.convolution_backward(grad, x, weight, None, [1] * ndim, [0] * ndim, [1] * ndim,
                                                         False, [0] * ndim, 1, [want_input, True, False])[:2])
    w = weight.squeeze(-1).t()
    grad_x = torch.bmm(w.expand(grad.shape[0], *w.shape), grad) if want_input else None
    grad_w = torch.bmm(grad, x.transpose(1, 2)).sum(0).unsqueeze(-1) if want_weight else None
    return grad_x, grad_w


class _Pointwise(torch.autograd.Function):
    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return pointwise_product(x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return pointwise_product_backward(grad, x, weight, *ctx.needs_input_grad[:2])


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``convNd(x, weight)`` for a 1-wide kernel without bias, stride 1: a matrix product for sequences where the
    kernel seam lets darts' CPU machinery compute, else torch's convolution."""
    if x.dim() == 3 and applies(x, weight):
        return _Pointwise.apply(x, weight)
    return _CONV[x.dim() - 2](x, weight)


class PointwiseConv(nn.Module):
    """A 1-wide convolution without bias over ``ndim`` spatial dimensions, with ``nn.ConvNd``'s weight (and
    initialisation) under the same name, computed by :func:`pointwise_conv`."""

    def __init__(self, ndim: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight = getattr(nn, f"Conv{ndim}d")(c_in, c_out, 1, bias=False).weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(x, self.weight)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}"
