"""End to end: search, train, evaluate and summary for every built-in family; run directories, resume
after SIGKILL, reproducibility and NaN handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from darts.config import load_config
from darts.plugins import load_genotype
from darts.assemble import build_network
from darts.training import Callback
from darts.training.trainer import TIMING
from darts.workflows import RunDirectoryError, RunError, evaluate, load_data, search, summary, train

#: each family's quick preset, shrunk further so that the whole suite stays fast
TINY = {
    "motifs-quick": ["--data.samples", "96", "--data.test_samples", "48", "--data.length", "16",
                     "--search.batch_size", "16", "--train.batch_size", "16"],
    "digits-quick": ["--data.test_fraction", "0.92", "--model.channels", "4", "--search.batch_size", "32"],
    "tabular-quick": ["--data.samples", "192", "--data.test_samples", "64", "--model.channels", "8"],
    "keywords-quick": ["--data.samples", "96", "--data.test_samples", "48", "--data.length", "5",
                       "--model.nodes", "3"],
}
#: short runs of the given batch sizes (no warm-up, no batch lowered for more steps)
SHORT = ["--search.epochs", "2",
         "--search.warmup_epochs", "0", "--train.epochs", "2", "--search.min_steps_per_epoch", "0",
         "--train.min_steps_per_epoch", "0"]
PNG = b"\x89PNG\r\n\x1a\n"


def tiny(preset: str, *extra: str):
    """A short run of ``preset`` on a sliver of its data, without pictures unless ``--log.plots true``."""
    return load_config(preset, [*TINY[preset], *SHORT, "--log.plots", "false", *extra])


@pytest.mark.parametrize("preset", sorted(TINY))
@pytest.mark.slow
def test_search_train_evaluate_for_each_family(preset, tmp_path):
    config = tiny(preset, "--log.plots", "true")
    run = search(config, tmp_path)
    expected = {"run.json", "config.yaml", "log.txt", "events.jsonl", "metrics.csv", "checkpoint.pt", "model.pt",
                "results.json", "genotype.json", "genotype_best.json", "genotypes.jsonl", "alphas.jsonl",
                "genotype.png", "alphas.png", "metrics.png"}
    assert expected <= {p.name for p in run.iterdir()}
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2] and metrics["val_loss"].notna().all()
    alphas = [json.loads(line) for line in (run / "alphas.jsonl").read_text().splitlines()]
    assert [a["epoch"] for a in alphas] == [1, 2]
    for weights in alphas[-1]["weights"].values():  # rows are softmax(alpha): they sum to one
        assert torch.allclose(torch.tensor(weights).sum(-1), torch.ones(len(weights)), atol=1e-5)
    genotype = load_genotype(run / "genotype.json")
    assert genotype.family == config.model.family
    assert all((run / name).read_bytes().startswith(PNG) for name in ("genotype.png", "alphas.png", "metrics.png"))
    events = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events.count("epoch") == 2 and events[-1] == "finish"

    trained = train(config, run / "genotype.json", tmp_path)
    results = json.loads((trained / "results.json").read_text())
    assert results["parameters"]["model"] == sum(
        p.numel() for p in build_network(genotype, config.model, load_data(config)).parameters())
    assert results["test"]["test_loss"] > 0
    assert evaluate(trained) == pytest.approx(results["test"])  # the saved model gives the same figures
    assert evaluate(run)["test_loss"] > 0


def test_multi_task_search_reports_every_target(tmp_path):
    run = search(tiny("tabular-quick", "--task_weights", "{group: 2.0, response: 1.0}"), tmp_path)
    columns = set(pd.read_csv(run / "metrics.csv").columns)
    assert {"val_group_accuracy", "val_group_macro_f1", "val_response_mse", "val_response_r2",
            "val_accuracy", "val_loss"} <= columns


@pytest.mark.slow
def test_same_seed_same_genotype_and_metrics(tmp_path):
    runs = [search(tiny("motifs-quick"), tmp_path / str(i)) for i in range(2)]
    assert runs[0] != runs[1]
    tables = [pd.read_csv(run / "metrics.csv").drop(columns=list(TIMING)) for run in runs]
    pd.testing.assert_frame_equal(*tables, check_exact=True)
    assert (runs[0] / "genotype.json").read_text() == (runs[1] / "genotype.json").read_text()
    other = search(tiny("motifs-quick", "--seed", "1", "--search.epochs", "1"), tmp_path / "other")
    assert not pd.read_csv(other / "metrics.csv").drop(columns=list(TIMING)).equals(tables[0].iloc[:1])


def test_every_run_gets_its_own_directory_and_finished_runs_are_not_resumed(tmp_path):
    config = tiny("tabular-quick", "--search.epochs", "1", "--search.warmup_epochs", "0")
    first, second = search(config, tmp_path), search(config, tmp_path)
    assert first != second and first.parent == second.parent == tmp_path
    with pytest.raises(RunDirectoryError, match="finished already"):
        search(resume=first)
    with pytest.raises(RunDirectoryError, match="is a search run; resume it with 'darts search --resume'"):
        train(resume=first)
    with pytest.raises(RunDirectoryError, match="not a run directory"):
        search(resume=tmp_path)


class PoisonLoss(Callback):
    """Turns the training loss into NaN at one step, as a diverging run would."""

    order = -1

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def after_loss(self, trainer) -> None:
        if (trainer.epoch + 1, trainer.batch_index + 1) == (self.epoch, self.step):
            trainer.loss = trainer.loss * float("nan")


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny("motifs-quick", "--search.epochs", "3", "--search.warmup_epochs", "0")
    with pytest.raises(RunError, match=r"non-finite training loss \(nan\) at epoch 2, step 2 of 3; the last good "
                                       r"checkpoint \(epoch 1\) stays"):
        search(config, tmp_path, callbacks=[PoisonLoss(epoch=2, step=2)])
    (run,) = tmp_path.iterdir()
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(v).all() for v in checkpoint["model"].values()
                                            if v.is_floating_point())
    assert not (run / "results.json").exists()
    assert "stopped: non-finite training loss (nan) at epoch 2, step 2" in (run / "log.txt").read_text()
    search(resume=run)  # the run goes on from its last good epoch
    assert json.loads((run / "results.json").read_text())["epochs"] == 3


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_a_stopped_training_run_resumes_to_the_uninterrupted_result(tmp_path, optimizer):
    config = tiny("digits-quick", "--train.epochs", "3", "--train.optimizer", optimizer)
    reference = json.loads((train(config, "DARTS_V1", tmp_path / "reference") / "results.json").read_text())
    with pytest.raises(RunError, match="at epoch 3, step 1"):
        train(config, "DARTS_V1", tmp_path / "stopped", callbacks=[PoisonLoss(epoch=3, step=1)])
    (run,) = (tmp_path / "stopped").iterdir()
    state = torch.load(run / "checkpoint.pt", weights_only=True)["optimizer"]["state"]
    assert ("exp_avg" in state[0]) == (optimizer == "adamw")  # the optimiser's own state is kept
    resumed = json.loads((train(resume=run) / "results.json").read_text())
    assert resumed["test"] == reference["test"] and resumed["epochs"] == 3


def _darts(*arguments: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "darts", *arguments], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.mark.slow
def test_a_search_killed_mid_epoch_resumes_to_the_same_result(tmp_path):
    # first order: the second-order step's own state (the virtual step's optimiser moments) is the weight
    # optimiser's, whose resumption the distributed and language-model resume tests check at second order
    options = ["search", "motifs-quick", *TINY["motifs-quick"], "--data.samples", "128", "--search.epochs", "2",
               "--search.warmup_epochs", "0", "--search.order", "first", "--log.plots", "false", "--quiet"]
    reference = _darts(*options, "--runs", str(tmp_path / "reference"))
    killed = _darts(*options, "--runs", str(tmp_path / "killed"))
    events, deadline = None, time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        found = list((tmp_path / "killed").glob("*/events.jsonl"))
        if found and '"event": "checkpoint"' in found[0].read_text():
            events = found[0]
            break
        time.sleep(0.02)
    assert events is not None, "the search never wrote its first checkpoint"
    killed.send_signal(signal.SIGKILL)  # during epoch 2: the checkpoint of epoch 1 is on disk
    assert killed.wait() == -signal.SIGKILL
    run = events.parent
    assert not (run / "results.json").exists()
    resumed = _darts("search", "--resume", str(run), "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    assert reference.wait(timeout=300) == 0, reference.stdout.read()
    (original,) = (tmp_path / "reference").iterdir()
    for name in ("genotype.json", "genotypes.jsonl", "alphas.jsonl"):
        assert (run / name).read_text() == (original / name).read_text(), name
    pd.testing.assert_frame_equal(pd.read_csv(run / "metrics.csv").drop(columns=list(TIMING)),
                                  pd.read_csv(original / "metrics.csv").drop(columns=list(TIMING)), check_exact=True)
    assert "resumed" in (run / "log.txt").read_text()


def test_summary_counts_the_discrete_network_of_a_genotype():
    config = load_config("digits-quick", ["--train.channels", "36", "--train.layers", "20"])
    figures = summary(config, "DARTS_V2")
    network = build_network("DARTS_V2", config.model, load_data(config), 36, 20)
    assert figures["parameters"] == sum(p.numel() for p in network.parameters())
    # the published 3,349,342 of DARTS_V2 on CIFAR-10, less the stem's weights for 2 of its 3 input channels
    assert figures["parameters"] == 3_349_342 - 2 * (3 * 36) * 3 * 3
    assert figures["input_shape"] == [1, 8, 8] and figures["multiply_adds"] > figures["parameters"]
    assert summary(config)["network"] == "search supernet"


def test_token_inputs_feed_a_conv1d_search_through_an_embedding(tmp_path):
    config = tiny("keywords-quick", "--model.family", "conv1d", "--model.channels", "4", "--model.layers", "2",
                  "--model.embedding_dim", "6", "--search.epochs", "1", "--search.warmup_epochs", "0")
    run = search(config, tmp_path)
    assert load_genotype(run / "genotype.json").family == "conv1d"


def test_a_space_that_does_not_fit_the_task_fails_before_any_run_directory_exists(tmp_path):
    with pytest.raises(ValueError, match="family 'recurrent' reads token ids"):
        search(tiny("motifs-quick", "--model.family", "recurrent"), tmp_path / "runs")
    with pytest.raises(ValueError, match="multiplier"):
        search(tiny("motifs-quick", "--model.multiplier", "5"), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_genotype_of_another_dimension_is_refused_or_retargeted(tmp_path):
    config = tiny("motifs-quick", "--train.epochs", "1", "--train.channels", "4", "--train.layers", "2")
    with pytest.raises(ValueError, match="'conv2d' works on inputs with 2 spatial dimension.*have 1; families "
                                         "that fit: conv1d"):
        train(config, "DARTS_V2", tmp_path)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())
    run = train(config, "DARTS_V2", tmp_path, genotype_family="conv1d")
    assert load_genotype(run / "genotype.json").family == "conv1d"
