"""The published DARTS search step (Liu et al. 2019, github.com/quark0/darts), rewritten for current torch,
so that it can be timed on the machine at hand beside this package's step.

The computation of the published ``model_search.py``, ``operations.py`` and ``architect.py``: plain torch
modules in the default (NCHW) layout, a mixed op that sums ``w * op(x)`` over every primitive (pooling
followed by an affine-free BatchNorm, ``none`` multiplying by zero), a new network built and loaded with
the virtual weights at every second-order step, a validation backward pass that computes every gradient,
and the finite difference taken by perturbing the weights in place. Only the API is current (no
``Variable``, ``add_(alpha=...)``); nothing is made faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, ::self.stride, ::self.stride].mul(0.0)


def relu_conv_bn(c_in, c_out, kernel, stride, padding, affine):
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


def dil_conv(c_in, c_out, kernel, stride, padding, dilation, affine):
    return nn.Sequential(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))


def sep_conv(c_in, c_out, kernel, stride, padding, affine):
    return nn.Sequential(dil_conv(c_in, c_in, kernel, stride, padding, 1, affine),
                         dil_conv(c_in, c_out, kernel, 1, padding, 1, affine))


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OPS = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride, padding=1),
    "skip_connect": lambda c, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: sep_conv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: sep_conv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: dil_conv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: dil_conv(c, c, 5, stride, 4, 2, affine),
}


class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        ops = []
        for primitive in PRIMITIVES:
            op = OPS[primitive](c, stride, False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            ops.append(op)
        self._ops = nn.ModuleList(ops)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(self, steps, multiplier, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else relu_conv_bn(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = relu_conv_bn(c_p, c, 1, 1, 0, affine=False)
        self._steps, self._multiplier = steps, multiplier
        self._ops = nn.ModuleList(MixedOp(c, 2 if reduction and j < 2 else 1)
                                  for i in range(steps) for j in range(2 + i))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class Network(nn.Module):
    def __init__(self, c, num_classes, layers, steps=4, multiplier=4, stem_multiplier=3):
        super().__init__()
        self._c, self._num_classes, self._layers = c, num_classes, layers
        self._steps, self._multiplier = steps, multiplier
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(steps, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        k = sum(2 + i for i in range(steps))
        self.alphas_normal = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_()
        self.alphas_reduce = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_()

    def new(self):
        # the published code ends this line with .cuda(): the new model goes where this one is
        model = Network(self._c, self._num_classes, self._layers, self._steps, self._multiplier).placed(
            self.classifier.weight.device)
        for x, y in zip(model.arch_parameters(), self.arch_parameters()):
            x.data.copy_(y.data)
        return model

    def arch_parameters(self):
        return [self.alphas_normal, self.alphas_reduce]

    def placed(self, device) -> "Network":
        """This network and its alphas (plain tensors, not parameters, as published) on ``device``."""
        self.to(device)
        self.alphas_normal = self.alphas_normal.detach().to(device).requires_grad_()
        self.alphas_reduce = self.alphas_reduce.detach().to(device).requires_grad_()
        return self

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = F.softmax(self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, weights)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def loss(self, x, target):
        return F.cross_entropy(self(x), target)


def _concat(xs):
    return torch.cat([x.reshape(-1) for x in xs])


class Architect:
    """The published ``architect.py``: Adam on the alphas; ``unrolled`` is the second-order step."""

    def __init__(self, model: Network, momentum=0.9, weight_decay=3e-4, arch_lr=3e-4, arch_weight_decay=1e-3):
        self.momentum, self.weight_decay, self.model = momentum, weight_decay, model
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999),
                                          weight_decay=arch_weight_decay)

    def step(self, train, val, eta, network_optimizer, unrolled):
        self.optimizer.zero_grad()
        if unrolled:
            self._backward_step_unrolled(train, val, eta, network_optimizer)
        else:
            self.model.loss(*val).backward()
        self.optimizer.step()

    def _compute_unrolled_model(self, train, eta, network_optimizer):
        loss = self.model.loss(*train)
        theta = _concat(self.model.parameters()).detach()
        try:
            moment = _concat(network_optimizer.state[v]["momentum_buffer"]
                             for v in self.model.parameters()).mul_(self.momentum)
        except KeyError:
            moment = torch.zeros_like(theta)
        dtheta = _concat(torch.autograd.grad(loss, list(self.model.parameters()))).detach() + self.weight_decay * theta
        return self._construct_model_from_theta(theta.sub(eta * (moment + dtheta)))

    def _construct_model_from_theta(self, theta):
        model_new = self.model.new()
        state, offset = self.model.state_dict(), 0
        for name, value in self.model.named_parameters():
            length = value.numel()
            state[name] = theta[offset: offset + length].view(value.size())
            offset += length
        model_new.load_state_dict(state)
        return model_new

    def _backward_step_unrolled(self, train, val, eta, network_optimizer):
        unrolled_model = self._compute_unrolled_model(train, eta, network_optimizer)
        unrolled_model.loss(*val).backward()
        dalpha = [v.grad for v in unrolled_model.arch_parameters()]
        vector = [v.grad.detach() for v in unrolled_model.parameters()]
        implicit_grads = self._hessian_vector_product(vector, train)
        for g, ig in zip(dalpha, implicit_grads):
            g.sub_(eta * ig)
        for v, g in zip(self.model.arch_parameters(), dalpha):
            v.grad = g.detach().clone()

    def _hessian_vector_product(self, vector, train, r=1e-2):
        radius = r / _concat(vector).norm()
        with torch.no_grad():
            for p, v in zip(self.model.parameters(), vector):
                p.add_(radius * v)
        grads_p = torch.autograd.grad(self.model.loss(*train), self.model.arch_parameters())
        with torch.no_grad():
            for p, v in zip(self.model.parameters(), vector):
                p.sub_(2 * radius * v)
        grads_n = torch.autograd.grad(self.model.loss(*train), self.model.arch_parameters())
        with torch.no_grad():
            for p, v in zip(self.model.parameters(), vector):
                p.add_(radius * v)
        return [(x - y).div_(2 * radius) for x, y in zip(grads_p, grads_n)]


def search_step(model: Network, architect: Architect, optimizer: torch.optim.Optimizer, train, val,
                order: str | None) -> None:
    """One step of the published ``train_search.py``: the alpha step (``order`` "first", "second" or None
    for none), then the weight step with the gradient clipped to norm 5."""
    if order is not None:
        architect.step(train, val, optimizer.param_groups[0]["lr"], optimizer, unrolled=order == "second")
    optimizer.zero_grad()
    model.loss(*train).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5)
    optimizer.step()
