"""Selection by perturbation (DARTS-PT) against a hand-computed case, and in searches."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from darts.cli import main
from darts.config import load_config
from darts.plugins import get_registry, load_genotype
from darts.selection import node_edges, select_by_perturbation
from darts.workflows import search

PRIMITIVES = ("none", "max_pool_3", "sep_conv_3", "skip_connect")
#: the alphas favour max_pool_3 on every edge, as a collapsed search does
ALPHA_WEIGHTS = torch.tensor([0.1, 0.5, 0.2, 0.2])
#: what each primitive is worth on each edge (normal cell; edges 0-1 enter node 0, edges 2-4 node 1)
NORMAL = torch.tensor([[0, 1, 4, 0.5],    # weight x value 0.5, 0.8, 0.1: sep_conv_3 (alpha says max_pool_3)
                       [0, 2, 1, 0.5],    # 1.0, 0.2, 0.1: max_pool_3
                       [0, 1, 1, 3],      # 0.5, 0.2, 0.6: skip_connect, then worth 3
                       [0, 0.5, 1, 0.1],  # 0.25, 0.2, 0.02: max_pool_3, then worth 0.5: the edge node 1 drops
                       [0, 0.2, 5, 0.1]])  # 0.1, 1.0, 0.02: sep_conv_3, then worth 5
REDUCE = NORMAL.clone()
REDUCE[0] = torch.tensor([0, 5, 1, 1])  # 2.5, 0.2, 0.2: max_pool_3


class AdditiveSupernet:
    """A stand-in supernet whose score is the sum of mixing weight x value over every edge and primitive, so
    that removing a primitive costs exactly its weight times its value."""

    def __init__(self) -> None:
        self.primitive_names = PRIMITIVES
        self.family = SimpleNamespace(name="conv1d", cell="feedforward")
        self.cell_concat = {"normal": (2, 3), "reduce": (2, 3)}
        self.values = {"normal": NORMAL, "reduce": REDUCE}
        self.fixed_weights = None
        self.scored_with_fixed_weights = True

    def arch_weights(self, mode: str | None = None) -> dict[str, torch.Tensor]:
        if self.fixed_weights is not None:
            return dict(self.fixed_weights)
        return {name: ALPHA_WEIGHTS.repeat(5, 1) for name in self.values}

    def score(self) -> float:
        self.scored_with_fixed_weights &= self.fixed_weights is not None
        return float(sum((w * self.values[name]).sum() for name, w in self.arch_weights().items()))


def test_selection_by_perturbation_by_hand():
    network, tunings = AdditiveSupernet(), []
    selection = select_by_perturbation(network, network.score, lambda: tunings.append(1), seed=3)
    normal, reduce = selection.genotype.cells["normal"], selection.genotype.cells["reduce"]
    assert normal.nodes == ((("sep_conv_3", 0), ("max_pool_3", 1)), (("sep_conv_3", 2), ("skip_connect", 0)))
    assert reduce.nodes == ((("max_pool_3", 0), ("max_pool_3", 1)), (("sep_conv_3", 2), ("skip_connect", 0)))
    assert normal.concat == (2, 3)
    # 10 edge decisions, then one node per cell with more than 2 inputs; fine-tuning after each
    kinds = [d.what for d in selection.decisions]
    assert kinds == ["primitive"] * 10 + ["edges"] * 2 and len(tunings) == 12
    first = selection.decisions[0]
    # the score without a primitive is the score less its weight x value on that edge
    values = {"normal": NORMAL, "reduce": REDUCE}[first.cell][first.where]
    for op, name in enumerate(PRIMITIVES[1:], start=1):
        assert first.scores[name] == pytest.approx(first.base - ALPHA_WEIGHTS[op].item() * values[op].item(), abs=1e-5)
    assert network.scored_with_fixed_weights and network.fixed_weights is None  # released at the end
    selection.genotype.validate(get_registry())


def test_the_argmax_of_alpha_would_have_picked_the_pooling():
    network = AdditiveSupernet()
    from darts.genotype import derive_cell

    by_alpha = derive_cell(network.arch_weights()["normal"], PRIMITIVES, 2, 2, (2, 3))
    assert {op for op, _ in by_alpha.genes} == {"max_pool_3"}


def test_the_fixed_weights_are_released_on_an_error():
    network = AdditiveSupernet()

    def failing() -> None:
        raise RuntimeError("fine-tuning failed")

    with pytest.raises(RuntimeError):
        select_by_perturbation(network, network.score, failing)
    assert network.fixed_weights is None


def test_node_edges():
    assert node_edges(9, 2) == [range(0, 2), range(2, 5), range(5, 9)]
    assert node_edges(6, 1) == [range(0, 1), range(1, 3), range(3, 6)]
    with pytest.raises(ValueError, match="whole nodes"):
        node_edges(4, 2)


@pytest.mark.parametrize("preset, tiny", [
    ("motifs-quick", ["--data.samples", "96", "--data.test_samples", "48", "--data.length", "16",
                      "--search.batch_size", "16", "--search.min_steps_per_epoch", "0", "--model.nodes", "2",
                      "--search.order", "first"]),
    ("keywords-quick", ["--data.samples", "96", "--data.test_samples", "48", "--data.length", "5",
                        "--model.nodes", "3", "--search.min_steps_per_epoch", "0"]),
    ("tabular-quick", ["--data.samples", "96", "--data.test_samples", "48", "--model.channels", "8",
                       "--search.min_steps_per_epoch", "0"]),
])
@pytest.mark.slow
def test_a_search_selects_by_perturbation(preset, tiny, tmp_path):
    config = load_config(preset, [*tiny, "--search.epochs", "1",
                                         "--search.warmup_epochs", "0", "--search.selection", "perturbation",
                                  "--search.selection_examples", "32", "--log.plots", "false"])
    run = search(config, tmp_path)
    selection = json.loads((run / "selection.json").read_text())
    genotype = load_genotype(run / "genotype.json")
    assert genotype.to_dict() == selection["genotype"]
    network_edges = sum(len(cell.genes) for cell in genotype.cells.values())
    assert network_edges and sum(d["what"] == "primitive" for d in selection["decisions"]) > 0
    events = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert "selection" in events


def test_perturbation_is_refused_for_a_language_model_before_anything_runs(tmp_path, capsys):
    assert main(["search", "ptb-quick", "--runs", str(tmp_path), "--search.selection", "perturbation"]) == 2
    assert "search.selection" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_only_the_cell_types_in_use_are_decided():
    network = AdditiveSupernet()
    network.searched_cell_types = ("normal",)  # a network without reduction cells
    selection = select_by_perturbation(network, network.score, lambda: None)
    assert {d.cell for d in selection.decisions} == {"normal"} and len(selection.decisions) == 5 + 1
    by_alpha = {op for op, _ in selection.genotype.cells["reduce"].genes}
    assert by_alpha == {"max_pool_3"}  # left to its alphas
