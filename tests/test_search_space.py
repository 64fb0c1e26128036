"""The search space is generic: any shape, any registered primitive set, a user's family included."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import darts
from darts import Family, SearchNetwork
from darts.plugins import isolated_plugins
from darts.search_space import MixedOp


@pytest.mark.parametrize("family, shape", [("conv1d", (2, 3, 37)), ("conv2d", (2, 3, 11, 9)), ("linear", (2, 3))])
def test_supernet_output_for_any_input_size(family, shape):
    network = SearchNetwork(family, in_channels=3, channels=4, num_classes=5, layers=4, nodes=3, multiplier=2)
    assert network(torch.randn(*shape)).shape == (2, 5)
    assert {name: tuple(a.shape) for name, a in network.alphas.items()} == {"normal": (9, 8 if family != "linear" else 5),
                                                                           "reduce": (9, 8 if family != "linear" else 5)}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("family, shape", [("linear", (4, 3)), ("conv1d", (4, 3, 9)), ("conv2d", (4, 3, 7, 5))])
def test_every_mixed_op_is_the_weighted_sum_of_every_primitive(family, shape, mode):
    """Every primitive is applied (CANDLE's linear cell never applied its mixed ops): each mixed op of a real
    forward pass equals the weighted sum of each primitive applied on its own, whatever work it shares, fuses
    or skips, in value and in its gradients with respect to the edge input and the weights."""
    torch.manual_seed(0)
    network = SearchNetwork(family, in_channels=3, channels=4, num_classes=2, layers=3, nodes=2).double()
    network.train(mode == "train")
    seen = []
    for module in network.modules():
        if isinstance(module, MixedOp):
            module.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs[0], inputs[1], out)))
    network(torch.randn(*shape, dtype=torch.float64))
    assert len(seen) == sum(isinstance(m, MixedOp) for m in network.modules())
    for mixed, x, weights, out in list(seen):  # calls below add to seen
        x, weights = x.detach().requires_grad_(), weights.detach().requires_grad_()
        torch.manual_seed(1)  # the same dropout masks for both
        expected = sum(w * op(x) for w, op in zip(weights, mixed.ops))
        torch.manual_seed(1)
        got = mixed(x, weights)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        if mode == "eval":
            torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        grad = torch.randn_like(expected)
        wanted = torch.autograd.grad(expected, (x, weights), grad)
        torch.testing.assert_close(torch.autograd.grad(got, (x, weights), grad), wanted, rtol=1e-10, atol=1e-12)


@dataclass
class ChannelFirstSequences(Family):
    """A user's family: the cells below it never learn that its data are sequences."""

    def stem(self, in_channels, out_channels):
        return nn.Conv1d(in_channels, out_channels, 1)

    def preprocess(self, in_channels, out_channels, affine=True):
        return nn.Conv1d(in_channels, out_channels, 1)

    def reduce(self, in_channels, out_channels, affine=True):
        return nn.Conv1d(in_channels, out_channels, 1, stride=2)

    def pool(self):
        return nn.AdaptiveMaxPool1d(1)


def test_a_users_family_fills_the_same_cells():
    with isolated_plugins():
        darts.register_family(ChannelFirstSequences("my_sequences", ("none", "gelu_pool"), spatial_dims=1),
                              plugin="user")
        darts.register_primitive("my_sequences", "none", plugin="user")(
            lambda c, s: nn.Sequential(nn.AvgPool1d(1, s), nn.Identity()).eval().requires_grad_(False))
        darts.register_primitive("my_sequences", "gelu_pool", plugin="user")(
            lambda c, s: nn.Sequential(nn.GELU(), nn.MaxPool1d(3, s, 1)))
        network = SearchNetwork("my_sequences", in_channels=2, channels=3, num_classes=4, layers=3, nodes=2,
                                head=lambda c: nn.Sequential(nn.Flatten(), nn.Linear(c, 4)))
        assert network(torch.randn(5, 2, 16)).shape == (5, 4)
        assert network.genotype().family == "my_sequences"


def test_a_faulty_user_primitive_fails_when_the_space_is_built():
    with isolated_plugins():
        darts.register_primitive("conv1d", "forgets_stride", plugin="user_plugin")(
            lambda c, s: nn.Conv1d(c, c, 3, padding=1))
        darts.register_primitive("conv1d", "wrong_channels", plugin="user_plugin")(
            lambda c, s: nn.Conv1d(c, 2 * c, 3, stride=s, padding=1))
        with pytest.raises(ValueError, match=r"conv1d/forgets_stride at stride 2 .* returned shape \(2, 4, 7\) "
                                             r"for input \(2, 4, 7\); expected \(2, 4, 4\)"):
            SearchNetwork("conv1d", 3, 4, 2, layers=3, primitives=["none", "forgets_stride"])
        with pytest.raises(ValueError, match=r"conv1d/wrong_channels at stride 1 .* returned shape \(2, 8, 7\)"):
            SearchNetwork("conv1d", 3, 4, 2, layers=3, primitives=["wrong_channels"])


def test_primitive_subset_and_errors():
    network = SearchNetwork("conv2d", 3, 4, 2, layers=3, primitives=["none", "sep_conv_3x3", "skip_connect"])
    assert network.primitive_names == ("none", "sep_conv_3", "skip_connect")
    with pytest.raises(ValueError, match="listed twice"):
        SearchNetwork("conv2d", 3, 4, 2, layers=3, primitives=["sep_conv_3", "sep_conv_3x3"])
    with pytest.raises(KeyError, match="did you mean 'sep_conv_5'"):
        SearchNetwork("conv2d", 3, 4, 2, layers=3, primitives=["sep_conv5"])
    with pytest.raises(ValueError, match="multiplier"):
        SearchNetwork("conv2d", 3, 4, 2, layers=3, nodes=2, multiplier=3)


def test_global_pooling_readouts():
    from darts.config import load_config
    from darts.plugins import load_genotype
    from darts.assemble import GlobalPool, build_network, build_search_network
    from darts.workflows import load_data

    x = torch.randn(2, 3, 5)
    assert torch.equal(GlobalPool("max")(x), x.amax(-1)) and torch.allclose(GlobalPool("avg")(x), x.mean(-1))
    assert torch.allclose(GlobalPool("avgmax")(x), torch.cat([x.mean(-1), x.amax(-1)], 1))
    # log-sum-exp by hand: (1/r) log((e^(r*0) + e^(r*log 3)) / 2) = log 2 at r = 1, log(5)/2 at r = 2
    pair = torch.tensor([[[0.0, math.log(3.0)]]], dtype=torch.float64)
    assert GlobalPool("lse")(pair).item() == pytest.approx(math.log(2.0))
    assert GlobalPool("lse", 2.0)(pair).item() == pytest.approx(math.log(5.0) / 2)
    # between the average and the maximum, tending to each at the extremes of r
    lse = GlobalPool("lse")(x)
    assert bool((lse >= x.mean(-1) - 1e-6).all()) and bool((lse <= x.amax(-1) + 1e-6).all())
    assert torch.allclose(GlobalPool("lse", 1e-4)(x.double()), x.double().mean(-1), atol=1e-3)
    assert torch.allclose(GlobalPool("lse", 1e3)(x.double()), x.double().amax(-1), atol=1e-2)
    with pytest.raises(ValueError, match="sharpness"):
        GlobalPool("lse", 0.0)
    with pytest.raises(ValueError, match="avgmax"):
        GlobalPool("sum")
    config = load_config("motifs-quick", ["--data.samples", "16", "--data.test_samples", "8", "--data.length", "16",
                                          "--model.global_pool", "avgmax"])
    data = load_data(config)
    transferred = load_genotype("DARTS_V2").with_family("conv1d")
    for network in (build_search_network(config.model, data), build_network(transferred, config.model, data)):
        assert network.head.in_features == 2 * network.out_channels  # average and max side by side
        assert network(data.example_input(2)).shape == (2, 4)
