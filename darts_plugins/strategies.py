"""The built-in search strategies and selectors, registered through the ``darts`` entry-point group exactly as
a third-party plugin registers its own.

Each strategy is written from its paper; where this framework departs from the paper's code, the docstring
says so.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from pydantic import Field

from darts.hookspecs import hookimpl
from darts.selection import select_by_alpha, select_by_perturbation_after_search
from darts.strategy import (SearchSpaceInfo, Selector, Strategy, StrategyError, StrategyOptions, linear)


class Darts(Strategy):
    """DARTS (Liu et al., 2019): softmax(alpha) mixes the primitives of every edge."""

    name = "darts"
    description = "the paper: softmax(alpha) mixing weights"


class PCDarts(Strategy):
    """PC-DARTS (Xu et al., 2020): softmax mixing on 1/K of each edge's channels (the rest bypass the edge),
    and edge normalisation (a learnt weight per edge, softmax over the edges entering each node).

    The same relaxation as DARTS; what changes is the supernet, built with ``partial_channels`` = K and
    ``edge_normalization``. ``model.partial_channels`` and ``model.edge_normalization`` remain accepted as the
    older spelling of these options."""

    name = "pc-darts"
    description = "partial channel connections (1/K of the channels) and edge normalisation"
    cells = frozenset({"feedforward"})

    class Options(StrategyOptions):
        partial_channels: int = Field(4, ge=1, description="K: 1/K of each edge's channels go through its primitives")
        edge_normalization: bool = Field(True, description="a learnt weight per edge, softmax over a node's edges")

    def network_options(self) -> dict:
        return {"partial_channels": self.options.partial_channels,
                "edge_normalization": self.options.edge_normalization}


class FairDarts(Strategy):
    """Fair DARTS (Chu et al., 2020): independent sigmoid(alpha) weights, so that primitives do not compete
    for one unit of weight, and the zero-one loss L01 = -mean((sigmoid(alpha) - 1/2)^2), weighted by
    ``zero_one_weight`` (10 in the paper), which pushes every weight towards 0 or 1. The genotype keeps, per
    node, the edges with the strongest sigmoid weight (the paper thresholds at 0.85 instead)."""

    name = "fair-darts"
    description = "sigmoid(alpha) weights and the zero-one loss (Chu et al. 2020)"

    class Options(StrategyOptions):
        zero_one_weight: float = Field(10.0, ge=0, description="weight of the zero-one loss (the paper's w01)")

    def mixing_weights(self, alpha, mode):
        return torch.sigmoid(alpha)

    def penalty(self, alphas: Mapping[str, torch.Tensor]):
        sigmoid = torch.cat([torch.sigmoid(a).flatten() for a in alphas.values()])
        return -self.options.zero_one_weight * ((sigmoid - 0.5) ** 2).mean()


class Gdas(Strategy):
    """GDAS (Dong and Yang, 2019): each pass samples one primitive per edge by the Gumbel-max trick,
    argmax(log softmax(alpha) + g), g ~ Gumbel(0, 1); its weight is 1 in the forward pass and the backward pass
    differentiates softmax((log softmax(alpha) + g) / tau) (straight-through). tau falls linearly from
    ``tau_max`` to ``tau_min`` over the epochs (10 to 0.1, as the paper). Evaluation and the genotype use
    softmax(alpha). Here every primitive of the edge is still computed (the paper's code computes only the
    sampled one and passes a biased gradient to the rest), so the search costs what DARTS costs."""

    name = "gdas"
    description = "Gumbel-softmax sampling of one primitive per edge, temperature schedule (Dong and Yang 2019)"

    class Options(StrategyOptions):
        tau_max: float = Field(10.0, gt=0, description="Gumbel-softmax temperature of the first epoch")
        tau_min: float = Field(0.1, gt=0, description="temperature reached at the end of the search")

    @property
    def tau(self) -> float:
        return linear(self.options.tau_max, self.options.tau_min, self.progress)

    def mixing_weights(self, alpha, mode):
        if mode in ("evaluate", "derive"):
            return F.softmax(alpha, dim=-1)
        gumbel = -torch.empty_like(alpha).exponential_().log()
        soft = F.softmax((F.log_softmax(alpha, dim=-1) + gumbel) / self.tau, dim=-1)
        hard = F.one_hot(soft.argmax(-1), alpha.shape[-1]).to(soft.dtype)
        return hard - soft.detach() + soft


class DrNas(Strategy):
    """DrNAS (Chen et al., 2021): each edge's mixing weights are drawn from a Dirichlet distribution whose
    concentration is beta = elu(alpha) + 1, by its reparameterised sample (pathwise gradient), and the alphas'
    loss adds ``kl_weight`` * KL(Dir(beta) || Dir(``prior``)), summed over the edges. Evaluation and the
    genotype use the distribution's mean, beta / sum(beta). The exact order is not offered: torch does not
    differentiate the Dirichlet sample twice."""

    name = "drnas"
    description = "Dirichlet mixing weights with a KL anchor to a prior (Chen et al. 2021)"
    orders = frozenset({"first", "second"})

    class Options(StrategyOptions):
        kl_weight: float = Field(1e-3, ge=0, description="weight of the KL divergence to the prior")
        prior: float = Field(1.0, gt=0, description="concentration of the symmetric Dirichlet prior")

    @staticmethod
    def concentration(alpha: torch.Tensor) -> torch.Tensor:
        return F.elu(alpha) + 1

    def mixing_weights(self, alpha, mode):
        beta = self.concentration(alpha)
        if mode in ("evaluate", "derive"):
            return beta / beta.sum(-1, keepdim=True)
        return torch.distributions.Dirichlet(beta).rsample()

    def penalty(self, alphas: Mapping[str, torch.Tensor]):
        if not self.options.kl_weight:
            return None
        total = 0.0
        for alpha in alphas.values():
            beta = self.concentration(alpha)
            prior = torch.distributions.Dirichlet(torch.full_like(beta, self.options.prior))
            total = total + torch.distributions.kl_divergence(torch.distributions.Dirichlet(beta), prior).sum()
        return self.options.kl_weight * total


class SDarts(Strategy):
    """SDARTS-RS (Chen and Hsieh, 2020): the weight step sees softmax(alpha) plus uniform noise in
    [-epsilon, epsilon], so the weights learn to do well in a neighbourhood of the alphas (random smoothing);
    epsilon grows linearly from ``epsilon_min`` to ``epsilon`` over the epochs (0.03 to 0.3, as the paper's
    code). The architecture step and evaluation see softmax(alpha)."""

    name = "sdarts"
    description = "random smoothing: uniform noise on softmax(alpha) in the weight step (Chen and Hsieh 2020)"

    class Options(StrategyOptions):
        epsilon: float = Field(0.3, ge=0, description="noise bound reached at the end of the search")
        epsilon_min: float = Field(0.03, ge=0, description="noise bound of the first epoch")

    @property
    def bound(self) -> float:
        return linear(self.options.epsilon_min, self.options.epsilon, self.progress)

    def mixing_weights(self, alpha, mode):
        weights = F.softmax(alpha, dim=-1)
        if mode != "weights":
            return weights
        return weights + torch.empty_like(weights).uniform_(-self.bound, self.bound)


class BetaDarts(Strategy):
    """beta-DARTS (Ye et al., 2022): the Beta-Decay regulariser, the mean over edges of the smooth maximum
    log(sum(exp(alpha))) of each edge's alphas, added to the alphas' loss with a weight that grows linearly
    from 0 to ``weight`` over the epochs. Its gradient, softmax(alpha) per edge, keeps the activated alphas
    from growing large and uneven; the mixing weights stay softmax(alpha)."""

    name = "beta-darts"
    description = "the Beta-Decay regulariser on the alphas' log-sum-exp (Ye et al. 2022)"

    class Options(StrategyOptions):
        weight: float = Field(1.0, ge=0, description="the regulariser's weight at the end of the linear ramp")

    def penalty(self, alphas: Mapping[str, torch.Tensor]):
        edges = torch.cat([torch.logsumexp(a, dim=-1) for a in alphas.values()])
        return linear(0.0, self.options.weight, self.progress) * edges.mean()


class DartsMinus(Strategy):
    """DARTS- (Chu et al., 2021): an auxiliary skip connection on every edge, scaled by beta, which decays
    linearly from ``beta`` to 0 over the epochs, so that skip connections need not win the alphas to let
    gradients through. The genotype is derived from softmax(alpha) without it. Here the auxiliary path is the
    space's own skip primitive (``skip_connect``, or ``identity`` for recurrent cells): beta is added to its
    mixing weight, which is exactly beta * x on stride-1 edges; on a reduction edge it shares the skip
    primitive's factorized reduction instead of owning one."""

    name = "darts-minus"
    description = "an auxiliary skip connection decayed from beta to 0 (Chu et al. 2021)"

    class Options(StrategyOptions):
        beta: float = Field(1.0, ge=0, description="the auxiliary skip connection's weight in the first epoch")
        skip: str | None = Field(None, description="the skip primitive; null: skip_connect, or identity")

    def _skip(self, primitives) -> str | None:
        if self.options.skip is not None:
            return self.options.skip if self.options.skip in primitives else None
        return next((name for name in ("skip_connect", "identity") if name in primitives), None)

    def check(self, space: SearchSpaceInfo) -> None:
        super().check(space)
        if self._skip(space.primitives) is None:
            wanted = repr(self.options.skip) if self.options.skip else "skip_connect or identity"
            raise StrategyError(f"search.strategy darts-minus adds its auxiliary connection through the skip "
                                f"primitive ({wanted}), which model.primitives lacks: add it, or set "
                                f"search.strategy_options.skip to one of {', '.join(space.primitives)}")

    def bind(self, primitives):
        super().bind(primitives)
        skip = self._skip(primitives)
        self._column = None if skip is None else list(primitives).index(skip)

    @property
    def beta(self) -> float:
        return linear(self.options.beta, 0.0, self.progress)

    def mixing_weights(self, alpha, mode):
        weights = F.softmax(alpha, dim=-1)
        if mode == "derive" or getattr(self, "_column", None) is None:
            return weights
        auxiliary = torch.zeros_like(weights)
        auxiliary[..., self._column] = self.beta
        return weights + auxiliary


STRATEGIES = (Darts, PCDarts, FairDarts, Gdas, DrNas, SDarts, BetaDarts, DartsMinus)


@hookimpl
def darts_add_strategies() -> list[type[Strategy]]:
    return list(STRATEGIES)


@hookimpl
def darts_add_selectors() -> list[Selector]:
    return [
        Selector("alpha", select_by_alpha, "the strongest derived weight per edge, then the k strongest edges per "
                                           "node (the paper's argmax)"),
        Selector("perturbation", select_by_perturbation_after_search,
                 "DARTS-PT: the primitive and edges whose removal hurts the supernet's validation score most",
                 supernet_scoring=True),
    ]
