"""Search strategies: the contract of every registered one, each built-in's maths against a formula written
by hand, their searches in every family they support, and the bad inputs."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from darts import SearchNetwork, Strategy, StrategyError, register_strategy
from darts.architecture import Architecture
from darts.cli import main
from darts.config import load_config
from darts.plugins import get_registry, isolated_plugins
from darts.search_plan import plan_search
from darts.search_space import RecurrentSearchNetwork
from darts.strategy import MODES, SearchSpaceInfo, check_contract
from darts.training import Callback
from darts_plugins.strategies import (STRATEGIES, BetaDarts, DartsMinus, DrNas, FairDarts, Gdas, PCDarts, SDarts)

NAMES = get_registry().strategy_names
D = torch.float64


def _alpha(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D).requires_grad_()


# --- the registry -----------------------------------------------------------------------------------------
def test_the_built_ins_come_through_the_entry_point_like_a_third_party_plugin():
    registry = get_registry()
    assert set(NAMES) >= {"darts", "pc-darts", "fair-darts", "gdas", "drnas", "sdarts", "beta-darts", "darts-minus"}
    for strategy in STRATEGIES:
        plugin = registry.strategy_plugin(strategy.name)
        assert (plugin.name, plugin.distribution) == ("strategies", "darts-nas")
    assert registry.selector_names == ["alpha", "perturbation"]


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_strategy_keeps_the_contract(name):
    strategy_class = get_registry().strategy(name)  # the registry checks the contract on first use
    check_contract(strategy_class)
    strategy = strategy_class()
    strategy.bind(("none", "skip_connect", "conv_3"))
    alpha = _alpha(5, 3)
    for mode in MODES:
        weights = strategy.mixing_weights(alpha, mode)
        assert weights.shape == alpha.shape and bool(torch.isfinite(weights).all()) and bool((weights >= -1).all())


def test_plugins_lists_strategies_and_selectors_with_their_plugin(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "darts search strategies" in out and "darts search selectors" in out
    assert "fair-darts" in out and "perturbation" in out and "darts-nas" in out


# --- each strategy's maths, against formulas by hand --------------------------------------------------------
def test_fair_darts_weights_are_sigmoids_and_the_zero_one_loss_gradient_is_the_formula():
    alpha = _alpha(4, 5)
    strategy = FairDarts({"zero_one_weight": 10.0})
    sigmoid = 1 / (1 + torch.exp(-alpha.detach()))
    for mode in MODES:
        assert torch.allclose(strategy.mixing_weights(alpha, mode), sigmoid)
    penalty = strategy.penalty({"normal": alpha})
    assert float(penalty.detach()) == pytest.approx(-10 * float(((sigmoid - 0.5) ** 2).mean()))
    (grad,) = torch.autograd.grad(penalty, alpha)
    # d/da [-w / N * sum (s - 1/2)^2] = -w / N * 2 (s - 1/2) s (1 - s)
    expected = -10 / alpha.numel() * 2 * (sigmoid - 0.5) * sigmoid * (1 - sigmoid)
    assert torch.allclose(grad, expected)


def test_gdas_samples_one_primitive_with_the_softmax_probabilities_at_any_temperature():
    alpha = torch.tensor([[1.0, 0.0, -0.5, 0.5]], dtype=D)
    probabilities = F.softmax(alpha, -1)[0]
    for tau_max in (10.0, 0.1):
        strategy = Gdas({"tau_max": tau_max, "tau_min": 0.1})
        strategy.start_epoch(0, 10)
        torch.manual_seed(1)
        weights = strategy.mixing_weights(alpha.expand(40_000, 4), "weights")
        assert torch.equal(weights.sum(-1), torch.ones(40_000, dtype=D))
        assert set(weights.unique().tolist()) <= {0.0, 1.0}  # one-hot forward (straight-through)
        frequencies = weights.mean(0)
        assert torch.allclose(frequencies, probabilities, atol=0.01), (frequencies, probabilities)  # 4 sigma
    assert torch.equal(Gdas().mixing_weights(alpha, "derive"), F.softmax(alpha, -1))


def test_gdas_passes_the_gradient_of_the_tempered_softmax_and_anneals_the_temperature():
    strategy = Gdas()
    strategy.start_epoch(5, 10)
    assert strategy.tau == pytest.approx(10 + (0.1 - 10) * 0.5)
    alpha, c = _alpha(3, 4), torch.randn(3, 4, dtype=D)
    torch.manual_seed(7)
    (grad,) = torch.autograd.grad((strategy.mixing_weights(alpha, "alphas") * c).sum(), alpha)
    torch.manual_seed(7)  # the same Gumbel noise: g = -log E, E ~ Exp(1)
    gumbel = -torch.empty_like(alpha).exponential_().log()
    a, tau = alpha.detach(), strategy.tau
    p = F.softmax(a, -1)
    y = F.softmax((F.log_softmax(a, -1) + gumbel) / tau, -1)
    expected = []
    for row in range(3):  # J = (1/tau) (diag(y) - y y^T) (I - 1 p^T); the gradient is J^T c
        jacobian = (torch.diag(y[row]) - torch.outer(y[row], y[row])) @ (torch.eye(4, dtype=D) - p[row].expand(4, 4))
        expected.append(jacobian.T @ c[row] / tau)
    assert torch.allclose(grad, torch.stack(expected))


def _dirichlet_kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KL(Dir(a) || Dir(b)) written out: ln G(a0) - sum ln G(ai) - ln G(b0) + sum ln G(bi)
    + sum (ai - bi)(psi(ai) - psi(a0))."""
    a0, b0 = a.sum(-1), b.sum(-1)
    return (torch.lgamma(a0) - torch.lgamma(a).sum(-1) - torch.lgamma(b0) + torch.lgamma(b).sum(-1)
            + ((a - b) * (torch.digamma(a) - torch.digamma(a0).unsqueeze(-1))).sum(-1))


def test_drnas_draws_from_the_dirichlet_of_elu_plus_one_and_its_kl_is_the_formula():
    alpha = _alpha(3, 4)
    strategy = DrNas({"kl_weight": 0.5, "prior": 2.0})
    beta = torch.where(alpha > 0, alpha + 1, torch.exp(alpha))  # elu(a) + 1, by hand
    mean = beta / beta.sum(-1, keepdim=True)
    assert torch.allclose(strategy.mixing_weights(alpha, "derive"), mean)
    torch.manual_seed(0)
    row = alpha[:1].expand(20_000, 4)
    samples = strategy.mixing_weights(row, "weights")
    assert torch.allclose(samples.sum(-1), torch.ones(20_000, dtype=D)) and bool((samples >= 0).all())
    assert torch.allclose(samples.mean(0), mean[0].detach(), atol=0.01)
    # the pathwise gradient of E[w . c] is the gradient of the mean's (Monte Carlo, 20 000 draws)
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=D)
    (sampled,) = torch.autograd.grad((samples * c).sum() / 20_000, alpha)
    (exact,) = torch.autograd.grad((mean[0] * c).sum(), alpha, retain_graph=True)
    assert torch.allclose(sampled[0], exact[0], atol=0.02)
    penalty = strategy.penalty({"normal": alpha})
    by_hand = 0.5 * _dirichlet_kl(beta, torch.full_like(beta, 2.0)).sum()
    assert float(penalty.detach()) == pytest.approx(float(by_hand.detach()))
    (grad,) = torch.autograd.grad(penalty, alpha)
    (grad_by_hand,) = torch.autograd.grad(by_hand, alpha)
    assert torch.allclose(grad, grad_by_hand)


def test_sdarts_smooths_only_the_weight_step_within_a_growing_bound():
    alpha = _alpha(6, 5)
    strategy = SDarts()
    strategy.start_epoch(0, 10)
    assert strategy.bound == pytest.approx(0.03)
    softmax = F.softmax(alpha, -1)
    for mode in ("alphas", "evaluate", "derive"):
        assert torch.equal(strategy.mixing_weights(alpha, mode), softmax)
    strategy.start_epoch(5, 10)
    assert strategy.bound == pytest.approx(0.03 + (0.3 - 0.03) * 0.5)
    noise = (strategy.mixing_weights(alpha, "weights") - softmax).detach()
    assert float(noise.abs().max()) <= strategy.bound and float(noise.std()) > strategy.bound / 4


def test_beta_darts_penalty_is_the_ramped_mean_log_sum_exp_with_softmax_gradient():
    normal, reduce = _alpha(3, 4), _alpha(2, 4, seed=1)
    strategy = BetaDarts({"weight": 2.0})
    strategy.start_epoch(0, 4)
    assert float(strategy.penalty({"normal": normal}).detach()) == 0.0
    strategy.start_epoch(2, 4)  # half way: weight 1
    penalty = strategy.penalty({"normal": normal, "reduce": reduce})
    rows = [math.log(sum(math.exp(v) for v in row)) for a in (normal, reduce) for row in a.tolist()]
    assert float(penalty.detach()) == pytest.approx(sum(rows) / 5)
    grads = torch.autograd.grad(penalty, [normal, reduce])
    for alpha, grad in zip((normal, reduce), grads):
        assert torch.allclose(grad, F.softmax(alpha.detach(), -1) / 5)


def test_darts_minus_adds_a_decaying_skip_weight_that_the_genotype_ignores():
    strategy = DartsMinus()
    strategy.bind(("none", "max_pool_3", "skip_connect", "conv_3"))
    alpha = _alpha(4, 4)
    softmax = F.softmax(alpha, -1)
    for epoch, beta in ((0, 1.0), (5, 0.5), (9, 0.1)):
        strategy.start_epoch(epoch, 10)
        extra = strategy.mixing_weights(alpha, "weights") - softmax
        assert torch.allclose(extra[:, 2], torch.full((4,), beta, dtype=D))
        assert torch.equal(extra[:, [0, 1, 3]], torch.zeros(4, 3, dtype=D))
        assert torch.equal(strategy.mixing_weights(alpha, "derive"), softmax)
    recurrent = SearchSpaceInfo("recurrent", "recurrent", ("none", "tanh", "identity"), "first")
    DartsMinus().check(recurrent)  # identity is the recurrent skip
    with pytest.raises(StrategyError, match="skip primitive"):
        DartsMinus().check(SearchSpaceInfo("conv1d", "feedforward", ("none", "conv_3"), "first", 1))


def test_darts_minus_auxiliary_skip_is_beta_times_the_input_on_a_stride_1_edge():
    network = SearchNetwork("linear", 6, 4, 2, layers=1, nodes=1, primitives=["none", "skip_connect", "linear"])
    strategy = DartsMinus()
    network.set_strategy(strategy)
    strategy.start_epoch(0, 2)  # beta = 1
    edge, x = network.cells[0].nodes[0].edges[0], torch.randn(3, 4)
    weights = network.arch_weights("weights")["normal"][0]
    plain = edge(x, F.softmax(network.alphas["normal"][0], -1))
    assert torch.allclose(edge(x, weights), plain + x, atol=1e-6)


def test_pc_darts_builds_partial_channels_and_edge_normalisation_and_keeps_the_old_keys():
    plan = plan_search(load_config("signals-quick", ["--search.strategy", "pc-darts"]))
    assert plan.strategy.name == "pc-darts"
    assert plan.network_options == {"partial_channels": 4, "edge_normalization": True}
    old = plan_search(load_config("signals-quick", ["--model.partial_channels", "2"]))
    assert old.strategy.name == "pc-darts"
    assert old.network_options == {"partial_channels": 2, "edge_normalization": False}
    assert isinstance(PCDarts(), Strategy)
    with pytest.raises(StrategyError, match="give it once"):
        plan_search(load_config("signals-quick", ["--model.partial_channels", "2", "--search.strategy", "pc-darts"]))


# --- a short search in every family each strategy supports --------------------------------------------------
def _supernet(family: str, options: dict):
    if family == "recurrent":
        return RecurrentSearchNetwork(vocab_size=11, embedding_dim=4, hidden_size=4, num_classes=3, nodes=2), \
            (torch.randint(0, 11, (6, 5)),)
    shape = {"conv1d": (6, 3, 8), "conv2d": (6, 3, 6, 6), "linear": (6, 5)}[family]
    return SearchNetwork(family, shape[1], 8, 3, layers=2, nodes=2, **options), (torch.randn(*shape),)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("family", ["conv1d", "conv2d", "linear", "recurrent"])
def test_each_strategy_takes_alpha_and_weight_steps_in_each_family_it_supports(name, family):
    strategy = get_registry().strategy(name)()
    network, inputs = _supernet(family, strategy.network_options() if family != "recurrent" else {})
    cell = network.family.cell
    order = "second" if "second" in strategy.orders else "first"
    space = SearchSpaceInfo(family, cell, network.primitive_names, order, network.family.spatial_dims)
    if cell not in strategy.cells:
        with pytest.raises(StrategyError, match="cells"):
            strategy.check(space)
        return
    strategy.check(space)
    network.set_strategy(strategy)
    strategy.start_epoch(1, 3)
    torch.manual_seed(0)
    targets = torch.randint(0, 3, (6,))
    weights = torch.optim.SGD(network.parameters(), 0.05, momentum=0.9)
    architecture = Architecture(network, weights, F.cross_entropy, order, lr=0.05)
    before = [a.detach().clone() for a in network.arch_parameters()]
    for _ in range(2):
        architecture.step((inputs, targets), (inputs, targets))
        weights.zero_grad()
        F.cross_entropy(network(*inputs), targets).backward()
        weights.step()
    after = list(network.arch_parameters())
    assert all(bool(torch.isfinite(a).all()) for a in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    network.genotype().validate(get_registry())


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.fixture
def no_data(monkeypatch):
    """Loading data fails the test: the errors below must come before it."""
    def refuse(config):
        raise AssertionError("the data were loaded before the strategy was checked")

    monkeypatch.setattr("darts.workflows.load_data", refuse)


@pytest.mark.parametrize("overrides, message", [
    (["--search.strategy", "fair_darts"], "unknown strategy 'fair_darts'; known: beta-darts, darts, "),
    (["--search.strategy", "fair_darts"], "did you mean 'fair-darts'?"),
    (["--search.selection", "perturb"], "unknown selector 'perturb'; known: alpha, perturbation; did you mean "
                                        "'perturbation'?"),
    (["--search.strategy", "gdas", "--search.strategy_options.tau", "3"],
     "search.strategy_options.tau: strategy 'gdas' takes no option 'tau'; the options of 'gdas': tau_max"),
    (["--search.strategy", "gdas", "--search.strategy_options.tau_min", "-1"],
     "search.strategy_options.tau_min: Input should be greater than 0"),
    (["--search.strategy", "drnas", "--search.order", "exact"],
     "search.strategy 'drnas' supports the orders first, second, not 'exact'"),
    (["--search.strategy", "pc-darts", "--model.family", "recurrent"],
     "search.strategy 'pc-darts' searches feedforward cells; family 'recurrent' has recurrent cells"),
    (["--search.strategy", "darts-minus", "--model.primitives", "[none, conv_3, max_pool_3]"],
     "auxiliary connection through the skip primitive"),
])
def test_bad_strategies_are_one_line_errors_before_any_data(tmp_path, capsys, no_data, overrides, message):
    assert main(["search", "signals-quick", "--runs", str(tmp_path), *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # no run folder


class NotFinite(Strategy):
    name = "not-finite"

    def mixing_weights(self, alpha, mode):
        return alpha * float("nan")


class WrongShape(Strategy):
    name = "wrong-shape"

    def mixing_weights(self, alpha, mode):
        return alpha.softmax(-1)[:, :1]


@pytest.mark.parametrize("strategy, message", [(NotFinite, "mixing_weights are not finite in mode 'weights'"),
                                               (WrongShape, "mixing_weights gave (3, 1) in mode 'weights'")])
def test_a_plugin_strategy_that_breaks_the_contract_fails_with_the_plugins_name(tmp_path, capsys, no_data,
                                                                             strategy, message):
    with isolated_plugins():
        register_strategy(strategy, plugin="broken_plugin")
        assert main(["search", "signals-quick", "--runs", str(tmp_path), "--search.strategy", strategy.name]) == 2
    err = capsys.readouterr().err
    assert f"strategy {strategy.name!r} of plugin broken_plugin (in-process)" in err and message in err


# --- resume and distributed, for every strategy ----------------------------------------------------------------
def _alphas_of(run) -> list:
    return [line for line in (run / "alphas.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_a_search_stopped_mid_epoch_resumes_to_the_uninterrupted_alphas(tmp_path, plain_family, name):
    from tests.test_distributed import PoisonLoss, _config

    from darts.workflows import RunError, search

    config = _config(32, "--search.strategy", name, "--search.epochs", "2", "--data.samples", "128")
    whole = search(config, tmp_path / "whole", quiet=True)
    with pytest.raises(RunError):
        search(config, tmp_path / "stopped", quiet=True, callbacks=[PoisonLoss()])  # NaN in epoch 2, batch 2 of 2
    (stopped,) = (tmp_path / "stopped").iterdir()
    search(resume=stopped, quiet=True)
    assert _alphas_of(stopped) == _alphas_of(whole)
    assert (stopped / "genotype.json").read_text() == (whole / "genotype.json").read_text()
    assert json.loads((whole / "results.json").read_text())["strategy"] == name


class FinalAlphas(Callback):
    """Each rank saves its alphas after the last epoch."""

    def __init__(self, path: str) -> None:
        self.path = path

    def after_epoch(self, trainer) -> None:
        if trainer.epoch == trainer.epochs:
            torch.save([a.detach() for a in trainer.model.arch_parameters()], self.path)


def _strategies_worker(rank: int, port: int, runs: str) -> None:
    from tests.test_distributed import _config, _join

    from darts.workflows import search

    _join(rank, port)
    for name in NAMES:
        search(_config(16, "--search.strategy", name, "--search.epochs", "1", "--data.samples", "128"),
               f"{runs}/{name}", quiet=True,
               callbacks=[FinalAlphas(f"{runs}/{name}-rank{rank}.pt")])
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_end_every_strategy_with_identical_alphas(tmp_path, plain_family):
    from tests.test_distributed import _spawn

    _spawn(_strategies_worker, str(tmp_path))
    for name in NAMES:
        first, second = (torch.load(tmp_path / f"{name}-rank{rank}.pt") for rank in (0, 1))
        assert all(torch.equal(a, b) for a, b in zip(first, second)), name
        assert (tmp_path / name).is_dir()
