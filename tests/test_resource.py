"""Resource-aware search: per-edge costs that add up to what a discrete network measures, the expected cost by
hand, and the penalty that pulls the weights towards cheaper primitives."""

from __future__ import annotations

import json

import pytest
import torch

from darts import Network, SearchNetwork
from darts.cli import main
from darts.assemble import count_parameters, multiply_adds
from darts.resource import ResourcePenalty, cost_model


def _measure(measure: str, example: torch.Tensor, **sizes):
    def discrete(genotype) -> float:
        network = Network(genotype, **sizes)
        return count_parameters(network)["model"] if measure == "parameters" else multiply_adds(network, example[:1])
    return discrete


@pytest.mark.parametrize("measure", ["parameters", "madds"])
@pytest.mark.parametrize("family, example", [("linear", torch.randn(2, 6)), ("conv1d", torch.randn(2, 3, 16))])
def test_the_costs_of_the_chosen_primitives_add_up_to_the_discrete_networks(measure, family, example):
    torch.manual_seed(0)
    sizes = {"in_channels": example.shape[1], "channels": 8, "num_classes": 3, "layers": 3}
    network = SearchNetwork(family, **sizes, nodes=3)
    discrete = _measure(measure, example, **sizes)
    model = cost_model(network, example, measure, discrete)
    names = list(network.primitive_names)
    for seed in range(3):
        genotype = network.random_genotype(seed)
        by_parts = model.fixed + sum(float(model.edge_costs[name][model.spans[n].start + source, names.index(op)])
                                     for name, cell in genotype.cells.items() for n, node in enumerate(cell.nodes)
                                     for op, source in node)
        assert by_parts == pytest.approx(discrete(genotype))


def test_the_expected_cost_by_hand_and_a_penalty_that_prefers_cheap_primitives():
    network = SearchNetwork("linear", 6, 8, 3, layers=1, nodes=2, primitives=["none", "skip_connect", "linear"])
    model = cost_model(network, torch.randn(2, 6), "parameters", _measure("parameters", None, in_channels=6,
                                                                          channels=8, num_classes=3, layers=1))
    costs = model.edge_costs["normal"]  # 5 edges x (none, skip, linear)
    assert costs[:, 0].eq(0).all() and costs[:, 1].eq(0).all() and costs[:, 2].gt(0).all()
    weights = torch.tensor([[0.5, 0.25, 0.25]] * 5)
    # node 0 keeps 2 of edges 0-1, node 1 keeps 2 of edges 2-4; an edge keeps linear with weight 0.25 / 0.5
    by_hand = model.fixed + 2 / 2 * sum(0.5 * costs[e, 2] for e in (0, 1)) + 2 / 3 * sum(0.5 * costs[e, 2]
                                                                                          for e in (2, 3, 4))
    assert float(model.expected({"normal": weights})) == pytest.approx(float(by_hand))
    high = ResourcePenalty(model, target=float(by_hand) * 2, weight=1.0)
    assert float(high({"normal": weights})) == 0.0  # under the target: no pressure
    penalty = ResourcePenalty(model, target=model.fixed + 1.0, weight=1.0)
    alpha = torch.zeros(5, 3, requires_grad=True)
    penalty({"normal": alpha.softmax(-1)}).backward()
    assert (alpha.grad[:, 2] > 0).all() and (alpha.grad[:, 1] < 0).all()  # descent lowers linear, raises skip


@pytest.mark.slow
def test_a_search_with_a_parameter_target_reports_it_and_stays_closer_to_it(tmp_path):
    common = ["search", "tabular-quick", "--runs", str(tmp_path), "--quiet", "--search.epochs", "3",
              "--search.warmup_epochs", "1", "--data.samples", "256", "--search.order", "first", "--log.plots", "false"]
    assert main([*common, "--search.resource", "{measure: parameters, target: 1000, weight: 50}"]) == 0
    (run,) = tmp_path.iterdir()
    resource = json.loads((run / "results.json").read_text())["resource"]
    assert resource["measure"] == "parameters" and resource["target"] == 1000
    assert resource["genotype"] == count_parameters_of(run)
    assert not list(run.glob("*.png"))  # log.plots false
    assert main([*common]) == 0
    (plain,) = [p for p in tmp_path.iterdir() if p != run]
    assert _linear_genes(run) <= _linear_genes(plain)


def _linear_genes(run) -> int:
    genotype = json.loads((run / "genotype.json").read_text())
    return sum(op in ("linear", "bottleneck", "linear_dropout") for cell in genotype["cells"].values()
               for node in cell["nodes"] for op, _ in node)


def count_parameters_of(run) -> int:
    from darts.config import load_config
    from darts.plugins import load_genotype
    from darts.assemble import build_network
    from darts.workflows import load_data

    config = load_config(run / "config.yaml")
    return count_parameters(build_network(load_genotype(run / "genotype.json"), config.model,
                                          load_data(config)))["model"]


def test_a_resource_target_on_a_recurrent_family_is_an_error(tmp_path, capsys):
    assert main(["search", "signals-quick", "--runs", str(tmp_path), "--model.family", "recurrent",
                 "--search.resource", "{target: 1000}"]) == 2
    assert "search.resource measures the edges of feedforward cells" in capsys.readouterr().err


def test_the_benchmark_table_shows_the_searched_cost_against_the_target():
    import pandas as pd

    from darts.bench import _summary_markdown, summarise

    rows = [{"model": "DARTS first order", "kind": "searched", "seed": s, "mean accuracy": 0.9, "mean macro-F1": 0.8,
             "parameters": 100, "searched parameters": 900 + s, "target parameters": 1000} for s in (0, 1)]
    rows += [{"model": "random genotype", "kind": "random", "seed": s, "mean accuracy": 0.8, "mean macro-F1": 0.7,
              "parameters": 120} for s in (0, 1)]
    summary, wins = summarise(pd.DataFrame(rows).set_index("model"))
    text = _summary_markdown(summary, wins, 2)
    assert "searched parameters" in text and "target parameters" in text and "900" in text and "1,000" in text
