"""PC-DARTS' options (Xu et al., 2020) against hand-written computations: partial channel connections with
their channel shuffle, and edge normalisation in the forward pass and in the derived genotype."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from darts import SearchNetwork
from darts.search_space import MixedOp
from darts.search_space.mixed_op import channel_shuffle


def published_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS' ``channel_shuffle``: view as (groups, channels per group), transpose, flatten."""
    batch, channels = x.shape[:2]
    return x.view(batch, groups, channels // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


@pytest.mark.parametrize("shape, groups, channels_last", [((2, 8, 5), 4, False), ((2, 6, 3, 4), 2, False),
                                                          ((2, 8, 3, 4), 4, True), ((2, 6), 3, False)])
def test_channel_shuffle_is_the_published_one_in_one_copy_keeping_the_layout(shape, groups, channels_last):
    torch.manual_seed(0)
    whole = torch.randn(*shape)
    if channels_last:
        whole = whole.contiguous(memory_format=torch.channels_last)
    part, rest = whole[:, :shape[1] // groups], whole[:, shape[1] // groups:]
    out = channel_shuffle(part, rest, groups, last=channels_last)
    assert torch.equal(out, published_shuffle(whole.contiguous(), groups))
    # by hand: channel i * groups + g is channel g * c + i of the concatenation
    c = shape[1] // groups
    assert all(torch.equal(out[:, i * groups + g], whole[:, g * c + i]) for i in range(c) for g in range(groups))
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)


def edge_by_hand(mixed: MixedOp, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """PC-DARTS' MixedOp: the weighted sum on the first 1/K channels, the rest max pooled (2x2) at stride 2,
    concatenated, shuffled; scaled as a whole by the edge weight (here: the sum of the weights)."""
    k = mixed.partial
    part, rest = x[:, :x.shape[1] // k], x[:, x.shape[1] // k:]
    mixed_part = sum(w * op(part) for w, op in zip(weights / weights.sum(), mixed.ops))
    if mixed.stride == 2 and x.dim() > 2:  # feature vectors have no resolution to reduce
        rest = getattr(F, f"max_pool{x.dim() - 2}d")(rest, 2, 2, ceil_mode=True)
    return weights.sum() * published_shuffle(torch.cat([mixed_part, rest], dim=1), k)


@pytest.mark.parametrize("family, shape", [("conv1d", (4, 3, 9)), ("conv2d", (4, 3, 7, 6)), ("linear", (4, 3))])
def test_a_partial_channel_edge_is_pc_darts_mixed_op_in_value_and_gradient(family, shape):
    torch.manual_seed(0)
    network = SearchNetwork(family, in_channels=3, channels=4, num_classes=2, layers=3, nodes=2,
                            partial_channels=2, edge_normalization=True).double()
    seen = []
    for module in network.modules():
        if isinstance(module, MixedOp):
            module.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs[0], inputs[1], out)))
    network(torch.randn(*shape, dtype=torch.float64))
    assert {m.stride for m, *_ in seen} == {1, 2} and all(m.partial == 2 for m, *_ in seen)
    for mixed, x, weights, out in list(seen):
        x, weights = x.detach().requires_grad_(), weights.detach().requires_grad_()
        reference = copy.deepcopy(mixed)  # its own BatchNorm statistics
        torch.manual_seed(1)  # the same dropout masks for both
        expected = edge_by_hand(reference, x, weights)
        torch.manual_seed(1)
        got = mixed(x, weights)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        grad = torch.randn_like(expected)
        torch.testing.assert_close(torch.autograd.grad(got, (x, weights), grad),
                                   torch.autograd.grad(expected, (x, weights), grad), rtol=1e-10, atol=1e-12)


def test_the_primitives_see_a_kth_of_the_channels_and_the_memory_falls():
    def network(k: int) -> SearchNetwork:
        torch.manual_seed(0)
        return SearchNetwork("conv2d", 3, 8, 10, layers=3, nodes=2, partial_channels=k)

    full, partial = network(1), network(4)
    convs = [m for m in partial.modules() if isinstance(m, MixedOp)]
    assert all(op.weight.shape[0] in (2, 4, 8) for m in convs for op in m.modules() if isinstance(op, torch.nn.Conv2d))
    assert sum(p.numel() for p in partial.parameters()) < sum(p.numel() for p in full.parameters()) / 2


def test_edge_normalization_weights_each_edge_by_the_softmax_over_its_nodes_inputs():
    torch.manual_seed(0)
    network = SearchNetwork("conv1d", 3, 4, 2, layers=3, nodes=3, edge_normalization=True)
    assert [tuple(p.shape) for p in network.arch_parameters()] == [(9, 8), (9, 8), (9,), (9,)]
    names = {name for name, _ in network.named_parameters()}
    assert not any(name.startswith(("alphas", "edge_alphas")) for name in names)
    with torch.no_grad():
        network.edge_alphas["normal"].copy_(torch.arange(9.0))
    beta = torch.arange(9.0)
    by_hand = torch.cat([torch.softmax(beta[0:2], 0), torch.softmax(beta[2:5], 0), torch.softmax(beta[5:9], 0)])
    weights = network.arch_weights()["normal"]
    torch.testing.assert_close(weights, torch.softmax(network.alphas["normal"], -1) * by_hand[:, None])
    # the network's output: every node the edge-weighted sum of its edges, by hand
    network.eval()
    x = torch.randn(2, 3, 8)
    softmax = {name: torch.softmax(alpha, -1) for name, alpha in network.alphas.items()}
    edge_weights = {name: network.edge_weights(beta) for name, beta in network.edge_alphas.items()}
    s0 = s1 = network.stem(x)
    for cell in network.cells:
        states, edge = [cell.preprocess0(s0), cell.preprocess1(s1)], 0
        for node in cell.nodes:
            out = 0
            for j, mixed in zip(node.inputs, node.edges):
                out = out + edge_weights[cell.kind][edge] * sum(
                    w * op(states[j]) for w, op in zip(softmax[cell.kind][edge], mixed.ops))
                edge += 1
            states.append(out)
        s0, s1 = s1, torch.cat([states[i] for i in cell.concat], dim=1)
    torch.testing.assert_close(network(x), network.head(network.pool(s1)), rtol=1e-5, atol=1e-6)


def test_the_genotype_ranks_edges_by_their_edge_weighted_strength():
    """Node 0 of the normal cell: the alphas favour the edge from state 0, the edge alphas the one from
    state 1 strongly enough to change which edges a node keeps (PC-DARTS' genotype)."""
    torch.manual_seed(0)
    network = SearchNetwork("conv1d", 3, 4, 2, layers=3, nodes=3, edge_normalization=True)
    names = network.primitive_names
    conv, pool = names.index("sep_conv_3"), names.index("max_pool_3")
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.zero_()
        alphas, betas = network.alphas["normal"], network.edge_alphas["normal"]
        # node 1 (edges 2, 3, 4 from states 0, 1, 2): the alphas prefer the edges from states 0 and 1
        alphas[2, conv], alphas[3, conv], alphas[4, pool] = 3.0, 2.0, 1.0
    assert set(network.genotype().cells["normal"].nodes[1]) == {("sep_conv_3", 0), ("sep_conv_3", 1)}
    with torch.no_grad():
        betas[4] = 3.0  # the edge from state 2 weighs most
    assert set(network.genotype().cells["normal"].nodes[1]) == {("sep_conv_3", 0), ("max_pool_3", 2)}


@pytest.mark.parametrize("options, message", [
    ({"partial_channels": 3}, "positive divisor of channels=8"),
    ({"partial_channels": 0}, "positive divisor of channels=8"),
])
def test_partial_channels_refuses_what_does_not_divide(options, message):
    with pytest.raises(ValueError, match=message):
        SearchNetwork("conv2d", 3, 8, 10, layers=3, nodes=2, **options)
    with pytest.raises(ValueError, match="at least 1"):
        MixedOp([torch.nn.Identity()], partial=0)


def test_the_model_options_build_a_pc_darts_supernet_and_recurrent_cells_refuse_them():
    from darts.config import load_config
    from darts.assemble import build_search_network
    from darts.workflows import load_data

    settings = load_config("motifs-quick")
    options = {"partial_channels": 4, "edge_normalization": True}
    network = build_search_network(settings.model.model_copy(update=options), load_data(settings))
    assert network.partial_channels == 4 and network.edge_alphas is not None
    keywords = load_config("keywords-quick")
    with pytest.raises(ValueError, match="recurrent cells have no channels to split"):
        build_search_network(keywords.model.model_copy(update=options), load_data(keywords))
