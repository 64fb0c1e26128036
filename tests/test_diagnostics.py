"""Search diagnostics and the verdict, warm-up, the alpha-step budget and the loss limit."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from darts.cli import main
from darts.config import ConfigError, load_config
from darts.diagnostics import edge_statistics, epoch_diagnostics, genotype_changes, parameter_free, verdict
from darts.genotype import Genotype
from darts.plugins import get_registry
from darts.recipes.examples import budget_batch_size
from darts.workflows import RunError, search

#: a short first-order search (the diagnostics do not depend on the order, and first order is the cheaper step)
TINY_MOTIFS = ["--data.samples", "96", "--data.test_samples", "48", "--data.length", "16",
               "--search.batch_size", "16", "--train.batch_size", "16", "--log.plots", "false",
               "--search.order", "first"]


def test_edge_statistics_by_hand():
    weights = torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    stats = edge_statistics(weights)
    assert stats["top"] == pytest.approx([0.5, 1 / 3])
    assert stats["margin"] == pytest.approx([0.25, 0.0])
    assert stats["entropy"] == pytest.approx([-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), math.log(3)])


def test_parameter_free_primitives_of_conv1d():
    primitives = get_registry().resolve("conv1d", None)
    assert parameter_free(primitives) == {"none", "max_pool_3", "avg_pool_3", "skip_connect"}


def _genotype(ops: list[str]) -> Genotype:
    """A conv1d genotype of one cell type 'normal' with two nodes, two genes each, from 4 primitive names."""
    return Genotype.from_darts("conv1d", ("none", "max_pool_3", "sep_conv_3", "skip_connect"),
                               normal=[(ops[0], 0), (ops[1], 1), (ops[2], 0), (ops[3], 2)], normal_concat=[2, 3],
                               reduce=[(ops[0], 0), (ops[1], 1), (ops[2], 0), (ops[3], 2)], reduce_concat=[2, 3])


def test_epoch_diagnostics_by_hand():
    decided = torch.tensor([0.1, 0.6, 0.2, 0.1])  # top 0.6 >= 2 x uniform (0.25)
    flat = torch.full((4,), 0.25)
    weights = {"normal": torch.stack([decided, flat, flat, flat, flat]),
               "reduce": torch.stack([decided, decided, flat, flat, flat])}
    free = frozenset({"none", "max_pool_3", "skip_connect"})
    before = _genotype(["max_pool_3", "sep_conv_3", "sep_conv_3", "skip_connect"])
    after = _genotype(["max_pool_3", "max_pool_3", "sep_conv_3", "skip_connect"])
    record = epoch_diagnostics(weights, after, before, free)
    assert record["decisive_edges"] == pytest.approx(3 / 10)
    assert record["alpha_top_median"] == pytest.approx(0.25) and record["alpha_top_max"] == pytest.approx(0.6)
    assert record["parameter_free_share"] == pytest.approx(6 / 8)  # 3 of 4 genes per cell
    assert record["genotype_changes"] == 2 and record["genotype_changed"]  # one gene in each cell
    assert genotype_changes(None, after) == 0
    assert record["alpha_entropy"] < 1.0 and record["uniform"] == 0.25


def _record(decisive: float, free: float, changed: int, steps: int = 10) -> dict:
    return {"decisive_edges": decisive, "uniform": 0.125, "edge_count": 18, "alpha_top_median": 0.3,
            "parameter_free_share": free, "genotype_changes": changed, "genotype_changed": bool(changed),
            "arch_steps": steps}


SEARCH = SimpleNamespace(epochs=10, arch_lr=3e-3, batch_size=64, warmup_epochs=0, selection="alpha")


def test_the_verdict_names_each_reason_and_the_keys_to_change():
    good = verdict([_record(0.2, 0.5, 3), _record(0.8, 0.5, 0)], SEARCH)
    assert good.decisive and good.label == "decisive"
    flat = verdict([_record(0.0, 0.5, 0), _record(0.2, 0.5, 0)], SEARCH)
    assert not flat.decisive and "near uniform" in flat.reasons[0]
    assert "search.arch_lr (now 0.003)" in flat.advice[0] and "search.batch_size (now 64)" in flat.advice[0]
    collapsed = verdict([_record(0.8, 0.5, 0), _record(0.8, 0.875, 0)], SEARCH)
    assert not collapsed.decisive and "parameter-free" in collapsed.reasons[0]
    assert "search.warmup_epochs" in collapsed.advice[0] and "perturbation" in collapsed.advice[0]
    # in a space of parameter-free primitives only (recurrent activations) there is nothing to collapse onto
    assert verdict([_record(0.8, 0.5, 0), _record(0.8, 1.0, 0)], SEARCH, space_is_mixed=False).decisive
    # the genotype selected by perturbation decides about a collapse, not the alphas' argmax
    assert verdict([_record(0.8, 0.5, 0), _record(0.8, 1.0, 0)], SEARCH, chosen_free_share=0.5).decisive
    moving = verdict([_record(0.8, 0.5, 2), _record(0.8, 0.5, 1)], SEARCH)
    assert not moving.decisive and "still changed" in moving.reasons[0] and "search.epochs (now 10)" in moving.advice[0]
    # warm-up epochs (no alpha step) do not count as epochs in which the genotype could settle
    assert verdict([_record(0.8, 0.5, 0, steps=0), _record(0.8, 0.5, 2)], SEARCH).decisive
    assert "inconclusive" in str(moving) and "try:" in str(moving)


@pytest.mark.slow
def test_a_search_records_diagnostics_and_a_verdict(tmp_path, capsys):
    assert main(["search", "motifs-quick", "--runs", str(tmp_path), "--quiet", *TINY_MOTIFS, "--search.epochs", "3",
                 "--search.warmup_epochs", "1", "--log.plots", "true"]) == 0
    out = capsys.readouterr().out
    assert "search verdict:" in out  # printed in quiet mode too
    (run,) = tmp_path.iterdir()
    metrics = pd.read_csv(run / "metrics.csv")
    # none in warm-up; 48 examples a split in batches of 4 (16 lowered for search.min_steps_per_epoch 10)
    assert list(metrics["arch_steps"]) == [0, 12, 12]
    for column in ("alpha_top_median", "alpha_entropy", "decisive_edges", "parameter_free_share", "genotype_changes"):
        assert metrics[column].notna().all()
    results = json.loads((run / "results.json").read_text())
    assert results["verdict"]["verdict"] in ("decisive", "inconclusive") and len(results["diagnostics"]) == 3
    alphas = [json.loads(line) for line in (run / "alphas.jsonl").read_text().splitlines()]
    initial = torch.tensor(alphas[0]["weights"]["normal"])
    top = results["diagnostics"][-1]["edges"]["normal"]["top"]
    assert top == pytest.approx(torch.tensor(alphas[-1]["weights"]["normal"]).max(-1).values.tolist(), abs=1e-6)
    assert results["diagnostics"][0]["edges"]["normal"]["top"] == pytest.approx(initial.max(-1).values.tolist(),
                                                                                abs=1e-6)
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "diagnostics" for e in events) == 3
    # each epoch's alphas line follows that epoch's own line (a line before it read as the previous epoch's)
    lines = [(e["event"], e["epoch"] if e["event"] == "diagnostics" else e["metrics"]["epoch"])
             for e in events if e["event"] in ("epoch", "diagnostics")]
    assert lines == [(kind, epoch) for epoch in (1, 2, 3) for kind in ("epoch", "diagnostics")]
    assert (run / "diagnostics.png").read_bytes().startswith(b"\x89PNG")
    assert main(["genotype", "show", str(run)]) == 0
    assert "search verdict:" in capsys.readouterr().out


@pytest.mark.slow
def test_warm_up_epochs_make_no_alpha_step(tmp_path):
    run = search(load_config("motifs-quick", [*TINY_MOTIFS, "--search.epochs", "2", "--search.warmup_epochs", "1"]),
                 tmp_path)
    from darts.assemble import build_search_network
    from darts.workflows import load_data

    alphas = [json.loads(line) for line in (run / "alphas.jsonl").read_text().splitlines()]
    first, second = (torch.tensor(a["weights"]["normal"]) for a in alphas)
    assert not torch.allclose(first, second, atol=1e-6)  # the second epoch moved them
    # after the warm-up epoch the alphas are still those of the initialisation (same seed, same build)
    config = load_config("motifs-quick", TINY_MOTIFS)
    torch.manual_seed(config.seed)
    network = build_search_network(config.model, load_data(config))
    assert torch.allclose(first, torch.softmax(network.alphas["normal"].detach(), -1), atol=1e-7)


def test_warm_up_must_leave_an_epoch_for_the_alphas():
    with pytest.raises(ConfigError, match="search.warmup_epochs"):
        load_config("motifs-quick", ["--search.epochs", "3", "--search.warmup_epochs", "3"])


@pytest.mark.slow
def test_small_data_gets_smaller_batches_and_a_warning(tmp_path, capsys):
    s = load_config("motifs-quick").search
    assert budget_batch_size(25, s) == 2 and budget_batch_size(10_000, s) == s.batch_size
    assert budget_batch_size(25, s.model_copy(update={"min_steps_per_epoch": 0})) == s.batch_size
    assert main(["search", "motifs-quick", "--runs", str(tmp_path), "--quiet", "--data.samples", "50",
                 "--data.test_samples", "20", "--data.length", "16", "--search.epochs", "2",
                 "--search.warmup_epochs", "0", "--search.batch_size", "64", "--search.order", "first"]) == 0
    out = capsys.readouterr().out
    assert "warning: the alphas get only" in out and "search.min_arch_steps" in out
    (run,) = tmp_path.iterdir()
    assert list(pd.read_csv(run / "metrics.csv")["arch_steps"]) == [12, 12]  # 25 examples, batches of 2


@pytest.mark.slow
def test_an_exploding_loss_stops_the_run(tmp_path, capsys):
    config = load_config("motifs-quick", [*TINY_MOTIFS, "--search.epochs", "2", "--search.warmup_epochs", "0",
                                           "--search.loss_limit", "1e-3"])
    with pytest.raises(RunError, match="exploding"):
        search(config, tmp_path / "a")
    assert main(["search", "motifs-quick", "--runs", str(tmp_path / "b"), "--quiet", *TINY_MOTIFS,
                 "--search.loss_limit", "1e-3"]) == 1
    assert "loss_limit" in capsys.readouterr().err
