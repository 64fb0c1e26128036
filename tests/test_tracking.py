"""Experiment tracking: TensorBoard event files read back with tensorboard's own reader, and log.txt's lines
through Python's logging."""

from __future__ import annotations

import json
import logging
import re

import pandas as pd
import pytest

from darts.config import ConfigError, load_config
from darts.training import Callback
from darts.workflows import search, train

from tests.test_workflows import tiny

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def events(run):
    accumulator = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0,
                                                                           "histograms": 0})
    accumulator.Reload()
    return accumulator


def steps(accumulator, tag):
    return {event.step: event.value for event in accumulator.Scalars(tag)}


@pytest.mark.slow
def test_a_search_writes_metrics_alphas_diagnostics_and_the_cell_diagram(tmp_path):
    run = search(tiny("motifs-quick", "--log.tensorboard", "true", "--search.epochs", "3"), tmp_path)
    board = events(run)
    metrics = pd.read_csv(run / "metrics.csv")
    for column, tag in [("train_loss", "train/loss"), ("val_accuracy", "val/accuracy"), ("lr", "lr/weights"),
                        ("arch_val_loss", "search/arch_val_loss"), ("alpha_top_median", "search/alpha_top_median"),
                        ("parameter_free_share", "search/parameter_free_share")]:
        read = steps(board, tag)
        assert sorted(read) == [1, 2, 3], tag
        assert [read[e] for e in (1, 2, 3)] == pytest.approx(list(metrics[column]), rel=1e-5), tag
    arch_lr = load_config(run / "config.yaml").search.arch_lr
    assert list(steps(board, "lr/alphas").values()) == pytest.approx([arch_lr] * 3)
    alphas = [json.loads(line) for line in (run / "alphas.jsonl").read_text().splitlines()]
    primitives = alphas[0]["primitives"]
    for record in alphas:
        for cell, rows in record["weights"].items():
            for edge, row in enumerate(rows):
                for primitive, value in zip(primitives, row):
                    read = steps(board, f"alphas/{cell}/edge_{edge:02d}/{primitive}")
                    assert read[record["epoch"]] == pytest.approx(value, rel=1e-5)
    tags = board.Tags()
    assert {"alphas/normal", "alphas/reduce"} <= set(tags["histograms"])
    histogram = board.Histograms("alphas/normal")[-1].histogram_value
    assert histogram.num == len(alphas[-1]["weights"]["normal"]) * len(primitives)
    assert histogram.sum == pytest.approx(len(alphas[-1]["weights"]["normal"]), rel=1e-4)  # rows sum to one
    images = board.Images("genotype")
    assert [image.step for image in images] == [1, 2, 3]
    assert images[-1].encoded_image_string.startswith(b"\x89PNG")


def test_a_training_run_draws_its_genotype_once(tmp_path):
    run = train(tiny("motifs-quick", "--log.tensorboard", "true"), "DARTS_V2", tmp_path, genotype_family="conv1d")
    board = events(run)
    assert [image.step for image in board.Images("genotype")] == [0]
    assert sorted(steps(board, "train/loss")) == [1, 2]
    assert "alphas/normal" not in board.Tags()["histograms"]


class StopBeforeCheckpoint(Callback):
    """Interrupts epoch 2 after TensorBoard wrote it and before the checkpoint saved it."""

    order = 97

    def after_epoch(self, trainer):
        if trainer.epoch == 2:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_a_resumed_run_shows_every_epoch_once(tmp_path):
    config = tiny("motifs-quick", "--log.tensorboard", "true", "--search.epochs", "3")
    with pytest.raises(KeyboardInterrupt):
        search(config, tmp_path, callbacks=[StopBeforeCheckpoint()])
    run = next(tmp_path.iterdir())
    assert sorted(steps(events(run), "train/loss")) == [1, 2]  # epoch 2 written, not checkpointed
    search(resume=run)
    read = steps(events(run), "train/loss")
    assert sorted(read) == [1, 2, 3] and len(events(run).Scalars("train/loss")) == 3
    assert [read[e] for e in (1, 2, 3)] == pytest.approx(list(pd.read_csv(run / "metrics.csv")["train_loss"]), rel=1e-5)


def test_without_tensorboard_installed_the_key_is_a_configuration_error(monkeypatch):
    monkeypatch.setattr("darts.training.tensorboard.available", lambda: False)
    with pytest.raises(ConfigError, match=r"log\.tensorboard.*pip install"):
        load_config("motifs-quick", ["--log.tensorboard", "true"])
    assert not load_config("motifs-quick").log.tensorboard  # off by default, needs nothing


@pytest.mark.slow
def test_log_lines_reach_the_darts_logger(tmp_path):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(logging.DEBUG)
    logger = logging.getLogger("darts")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run = search(tiny("motifs-quick"), tmp_path, quiet=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    text = (run / "log.txt").read_text()
    stamped = re.findall(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ", text, flags=re.MULTILINE)
    assert len(records) == len(stamped) > 5
    for record in records:
        assert f" {record.getMessage()}\n" in text
    assert all(record.run_dir == str(run) for record in records)
    assert any(record.levelno == logging.WARNING and record.event == "warning" for record in records)
