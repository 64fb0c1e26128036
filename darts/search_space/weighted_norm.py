"""``weight * BatchNorm(z)`` in one autograd node that keeps only the normalised output.

In a mixed op, every primitive that ends in a BatchNorm without affine parameters (all of DARTS' search-time
convolutions and poolings) is followed by its softmax weight. Composed from torch's operations, the
BatchNorm keeps its input and the product keeps the BatchNorm's output: two tensors of the edge's size per
primitive. Both gradients can be written with the output x̂ alone,

    d/dz  = w · invstd · (g - mean(g) - x̂ · mean(g · x̂)),      d/dw = sum(g · x̂),

so this node keeps x̂ and the per-channel invstd only. Given the mixed op's sum so far, it returns that sum
plus ``weight * x̂`` (d/d sum = g). The forward pass is torch's batch norm (same numbers, running statistics
updated the same way), or on float32 CPU tensors (channels-last images, sequences) the kernels of
:mod:`darts.search_space.batch_norm_kernels`, which also add the weighted term in the same pass. The
backward pass is torch's batch-norm backward kernel (or that module's) fed with x̂; under ``create_graph``
(the exact second-order step) it is written with differentiable operations on x̂ and invstd, which are
outputs of the node, so double backward is exact too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darts.kernels import applies
from darts.search_space import batch_norm_kernels

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fusable(module: nn.Module) -> bool:
    """Whether ``module`` is a plain torch BatchNorm (or a :class:`LeanBatchNorm2d` and its kin) without
    affine parameters: what this node computes."""
    return type(module) in _BATCH_NORMS + LEAN_BATCH_NORMS and not module.affine


class _WeightedBatchNorm(torch.autograd.Function):
    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, z, weight, running_mean, running_var, momentum, eps, before):
        xhat, invstd, out = _batch_norm(z, running_mean, running_var, momentum, eps, weight, before)
        ctx.save_for_backward(weight, xhat, invstd)
        ctx.eps = eps
        ctx.set_materialize_grads(False)
        return out, xhat, invstd

    @staticmethod
    def backward(ctx, grad_out, grad_xhat, grad_invstd):
        weight, xhat, invstd = ctx.saved_tensors
        grad_before = grad_out if ctx.needs_input_grad[6] else None
        if not torch.is_grad_enabled() and grad_xhat is None and grad_invstd is None:
            return (*_fast_backward(ctx, grad_out, weight, xhat, invstd), grad_before)
        upstream = weight * grad_out if grad_out is not None else torch.zeros_like(xhat)
        if grad_xhat is not None:
            upstream = upstream + grad_xhat
        grad_z = _differentiable_grad_z(upstream, xhat, invstd, grad_invstd)
        grad_w = (grad_out * xhat).sum() if grad_out is not None and ctx.needs_input_grad[1] else None
        return grad_z, grad_w, None, None, None, None, grad_before


def _batch_norm(z: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                momentum: float, eps: float, weight: torch.Tensor | None = None,
                before: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x̂, invstd, ``before + weight * x̂`` or None without a weight) of a training-mode batch norm without affine
    parameters, updating the running statistics; the kernels compute the sum in the normalising pass."""
    if batch_norm_kernels.usable(z):
        return batch_norm_kernels.forward(z, running_mean, running_var, momentum, eps,
                                          None if weight is None else float(weight), before)
    xhat, _, invstd = torch.native_batch_norm(z, None, None, running_mean, running_var, True, momentum, eps)
    if weight is None:
        return xhat, invstd, None
    return xhat, invstd, weight * xhat if before is None else torch.addcmul(before, weight, xhat)


def _differentiable_grad_z(upstream: torch.Tensor, xhat: torch.Tensor, invstd: torch.Tensor,
                           grad_invstd: torch.Tensor | None) -> torch.Tensor:
    """d/dz of a batch norm from the gradient reaching x̂ (and invstd), in differentiable operations on x̂."""
    shape = (1, -1) + (1,) * (xhat.dim() - 2)
    dims = [0] + list(range(2, xhat.dim()))
    scale = invstd.view(shape)
    grad_z = scale * (upstream - upstream.mean(dims, keepdim=True) - xhat * (upstream * xhat).mean(dims, keepdim=True))
    if grad_invstd is not None:  # d invstd / dz = -invstd² x̂ / N
        grad_z = grad_z - grad_invstd.view(shape) * scale ** 2 * xhat / (xhat.numel() // xhat.shape[1])
    return grad_z


def _fast_backward(ctx, grad_out, weight, xhat, invstd):
    """torch's kernel, given x̂ as the input with mean 0 and invstd 1, and w·invstd as the per-channel scale."""
    if grad_out is None:
        return None, None, None, None, None, None
    grad_z, grad_scale = _kernel_backward(grad_out, xhat, weight * invstd, ctx.eps,
                                          ctx.needs_input_grad[0], ctx.needs_input_grad[1])
    grad_w = grad_scale.sum().reshape(weight.shape) if ctx.needs_input_grad[1] else None
    return grad_z, grad_w, None, None, None, None


def _kernel_backward(grad: torch.Tensor, xhat: torch.Tensor, scale: torch.Tensor, eps: float, want_input: bool,
                     want_scale: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's batch-norm backward kernel on x̂ (mean 0, invstd 1) with ``scale`` as the per-channel weight
    (:mod:`darts.search_space.batch_norm_kernels`'s where it applies)."""
    if batch_norm_kernels.usable(xhat):
        return batch_norm_kernels.backward(grad, xhat, scale, want_input)
    channels = xhat.shape[1]
    # under autocast x̂ may be bfloat16 or float16; torch's CPU kernel then wants float32 per-channel tensors
    scale = scale.float() if xhat.dtype in (torch.bfloat16, torch.float16) else scale
    grad_z, grad_scale, _ = torch.ops.aten.native_batch_norm_backward(
        grad, xhat, scale, None, None, scale.new_zeros(channels), scale.new_ones(channels), True, eps,
        [want_input, want_scale, False])
    return grad_z, grad_scale


class _Normalize(torch.autograd.Function):
    """Training-mode batch normalisation without affine parameters that keeps only its output x̂ (and invstd)."""

    # forward with ctx (no setup_context): torch binds every call's arguments by signature otherwise, 0.1 ms
    @staticmethod
    def forward(ctx, z, running_mean, running_var, momentum, eps):
        xhat, invstd, _ = _batch_norm(z, running_mean, running_var, momentum, eps)
        ctx.save_for_backward(xhat, invstd)
        ctx.eps = eps
        ctx.set_materialize_grads(False)
        return xhat, invstd

    @staticmethod
    def backward(ctx, grad_xhat, grad_invstd):
        xhat, invstd = ctx.saved_tensors
        if grad_xhat is None and grad_invstd is None:
            return None, None, None, None, None
        if not torch.is_grad_enabled() and grad_invstd is None:
            return _kernel_backward(grad_xhat, xhat, invstd, ctx.eps, True, False)[0], None, None, None, None
        upstream = grad_xhat if grad_xhat is not None else torch.zeros_like(xhat)
        return _differentiable_grad_z(upstream, xhat, invstd, grad_invstd), None, None, None, None


def normalize(z: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """``norm(z)`` for a training-mode BatchNorm without affine parameters (see :func:`fusable`), keeping only
    the output for the backward pass (torch's BatchNorm keeps its input, and a product with the output keeps
    the output too)."""
    _check_batch(z, norm)
    momentum = _count_batch(norm)
    running = (norm.running_mean, norm.running_var) if norm.track_running_stats else (None, None)
    if not applies(z):  # the kernel seam: torch's own batch norm (a GPU, autocast, tracing, float64)
        return F.batch_norm(z, *running, None, None, True, momentum, norm.eps)
    return _Normalize.apply(z, *running, momentum, norm.eps)[0]


def _check_batch(z: torch.Tensor, norm: nn.Module) -> None:
    # torch's kernel, called directly, would write past running statistics of another size
    if z.dim() < 2 or z.shape[1] != norm.num_features:
        raise ValueError(f"{type(norm).__name__}({norm.num_features}) expects (batch, {norm.num_features}, ...), "
                         f"got input size {list(z.shape)}")
    if z.numel() // z.shape[1] == 1:  # as torch's BatchNorm: one value per channel has no variance
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(z.shape)}")


def _count_batch(norm: nn.Module) -> float:
    """Count one more batch in ``norm`` as torch's BatchNorm does; the momentum of its running statistics."""
    momentum = norm.momentum if norm.momentum is not None else 0.0
    if norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # a cumulative moving average, as torch's BatchNorm
            momentum = 1.0 / float(norm.num_batches_tracked)
    return momentum


def track_running_stats(norm: nn.Module, z: torch.Tensor) -> None:
    """Update a training-mode BatchNorm's running statistics with the batch ``z`` as ``norm(z)`` would,
    without normalising (for a norm whose output was computed by another module with the same batch)."""
    momentum = _count_batch(norm)
    if norm.track_running_stats:
        with torch.no_grad():
            torch.batch_norm_update_stats(z, norm.running_mean, norm.running_var, momentum)


def weighted_batch_norm(z: torch.Tensor, weight: torch.Tensor, norm: nn.Module,
                        before: torch.Tensor | None = None) -> torch.Tensor:
    """``weight * norm(z)`` for a training-mode BatchNorm without affine parameters (see :func:`fusable`); with
    ``before`` (a mixed op's sum so far), ``before + weight * norm(z)``, in the same pass."""
    _check_batch(z, norm)
    momentum = _count_batch(norm)
    running = (norm.running_mean, norm.running_var) if norm.track_running_stats else (None, None)
    if not applies(z):  # the kernel seam: torch's own batch norm (a GPU, autocast, tracing, float64)
        xhat = F.batch_norm(z, *running, None, None, True, momentum, norm.eps)
        return weight * xhat if before is None else before + weight * xhat
    return _WeightedBatchNorm.apply(z, weight, *running, momentum, norm.eps, before)[0]


class _KeepsOutput:
    """In training without affine parameters, :func:`normalize` (keeps the output for backward, not the input);
    otherwise torch's BatchNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.affine:
            self._check_input_dim(x)
            return normalize(x, self)
        return super().forward(x)


class LeanBatchNorm1d(_KeepsOutput, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that, in training without affine parameters, keeps its output for backward instead
    of its input: the same numbers and running statistics."""


class LeanBatchNorm2d(_KeepsOutput, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that, in training without affine parameters, keeps its output for backward instead
    of its input: the same numbers and running statistics."""


class LeanBatchNorm3d(_KeepsOutput, nn.BatchNorm3d):
    """``nn.BatchNorm3d`` that, in training without affine parameters, keeps its output for backward instead
    of its input: the same numbers and running statistics."""


#: the lean BatchNorm of 1, 2 and 3 spatial dimensions, in that order
LEAN_BATCH_NORMS = (LeanBatchNorm1d, LeanBatchNorm2d, LeanBatchNorm3d)
