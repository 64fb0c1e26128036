"""No data file runs code, loaders check values, every failure of the CLI is one line, and runs are owned."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from torch import nn

import darts
from darts import hookimpl
from darts.cli import main
from darts.data import DataFileError, DataWarning, load_text_table
from darts.data.images import ImageFolder, load_arrays, load_cifar
from darts.io import atomic_write_text, sweep_orphans
from darts.plugins import PluginLoadWarning, create_plugin_manager, isolated_plugins
from darts.runs import RunInUseError, lock_run_dir, unlock_run_dir
from darts.untrusted import UntrustedFileError, load_pickle, load_torch

TINY = ["--model.channels", "4", "--model.layers", "2", "--model.nodes", "2", "--search.epochs", "2",
        "--search.warmup_epochs", "0", "--data.samples", "64", "--data.test_samples", "32", "--search.batch_size",
        "16", "--log.plots", "false", "--quiet"]


class CreatesAFile:
    """A pickle payload: unpickling it would create ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def cifar_folder(root: Path, batch_of_1: dict | None = None, labels: list[int] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": labels or [0, 1, 2, 3]}
        if name == "data_batch_1" and batch_of_1 is not None:
            batch = batch_of_1
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


# --- 1. no data file runs code ------------------------------------------------------------------------------
def test_a_crafted_cifar_batch_is_refused_and_its_payload_never_runs(tmp_path, capsys):
    victim = tmp_path / "pwned"
    folder = cifar_folder(tmp_path / "cifar", {b"data": CreatesAFile(victim), b"labels": [0]})
    refused = r"data_batch_1: not a CIFAR python batch: not a pickle of plain data .*refers to (posix|nt)\.system"
    with pytest.raises(DataFileError, match=refused):
        load_cifar(folder)
    assert main(["search", "cifar10-quick", "--data.path", str(folder), "--runs", str(tmp_path / "runs")]) == 2
    assert "data_batch_1" in capsys.readouterr().err
    assert not victim.exists() and not (tmp_path / "runs").exists()


def test_plain_cifar_batches_still_load_and_their_labels_are_checked(tmp_path):
    x_train, y_train, _, _, names = load_cifar(cifar_folder(tmp_path / "ok"))
    assert x_train.shape == (20, 3, 32, 32) and set(y_train.tolist()) == {0, 1, 2, 3} and len(names) == 10
    with pytest.raises(DataFileError, match=r"label 1000000 is out of range; this format has 10 classes"):
        load_cifar(cifar_folder(tmp_path / "huge", labels=[0, 1, 2, 10 ** 6]))
    assert load_pickle(tmp_path / "ok" / "test_batch")[b"labels"] == [0, 1, 2, 3]
    (tmp_path / "objects").write_bytes(pickle.dumps({"a": np.array([object()], dtype=object)}))
    with pytest.raises(UntrustedFileError):
        load_pickle(tmp_path / "objects")


@pytest.mark.slow
def test_a_tampered_checkpoint_or_model_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UntrustedFileError, match="checkpoint.pt: not a readable checkpoint"):
        load_torch(tmp_path / "checkpoint.pt", "checkpoint")
    assert main(["search", "motifs-quick", "--runs", str(tmp_path / "runs"), *TINY]) == 0
    run = next((tmp_path / "runs").iterdir())
    (run / "model.pt").write_bytes(pickle.dumps(CreatesAFile(tmp_path / "pwned")))
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    error = capsys.readouterr().err
    assert "model.pt: not a readable model" in error and "Traceback" not in error and len(error.splitlines()) == 1
    assert not (tmp_path / "pwned").exists()


# --- 2. loaders check values ------------------------------------------------------------------------------
@pytest.mark.parametrize("x, y, message", [
    (np.full((10, 8), np.nan, np.float32), np.arange(10) % 2, r"x_train\): \d+ NaN or infinite"),
    (np.where(np.eye(10, 8) > 0, np.inf, 0).astype(np.float32), np.arange(10) % 2, "NaN or infinite"),
    (np.ones((10, 8), np.complex64), np.arange(10) % 2, "complex values"),
    (np.ones((10, 8), np.float32), np.zeros(10, int), "a single class"),
])
def test_arrays_with_bad_values_are_errors_naming_the_file(tmp_path, x, y, message):
    np.savez(tmp_path / "data.npz", x=x, y=y)
    with pytest.raises(DataFileError, match=message) as error:
        load_arrays(tmp_path / "data.npz")
    assert str(tmp_path / "data.npz") in str(error.value)


@pytest.mark.slow
def test_test_labels_never_seen_in_training_warn_and_are_logged(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x_train=x[:30], y_train=np.arange(30) % 2, x_test=x[30:], y_test=np.arange(10) % 3)
    with pytest.warns(DataWarning, match=r"test label\(s\) \[2\] never appear in training \(3 test example"):
        load_arrays(tmp_path / "data.npz")
    config = tmp_path / "arrays.yaml"
    config.write_text("task: arrays\nmodel: {channels: 4, layers: 2, nodes: 2}\nsearch: {epochs: 1, batch_size: 8}\n")
    assert main(["search", str(config), "--data.path", str(tmp_path / "data.npz"), "--runs", str(tmp_path / "r"),
                 "--quiet"]) == 0
    events = [json.loads(line) for line in next((tmp_path / "r").iterdir()).joinpath("events.jsonl").open()]
    assert any(e["event"] == "warning" and "never appear in training" in e["message"] for e in events)


def test_text_tables_with_no_words_or_one_class_are_errors(tmp_path):
    (tmp_path / "blank.csv").write_text("text,label\n,a\n ,b\n...,a\n")
    with pytest.raises(DataFileError, match="no training text in column 'text' holds a word"):
        load_text_table(tmp_path / "blank.csv", "text", ["label"], test_fraction=0.3)
    (tmp_path / "one.csv").write_text("text,label\n" + "".join(f"word {i},same\n" for i in range(6)))
    with pytest.raises(DataFileError, match="a single class"):
        load_text_table(tmp_path / "one.csv", "text", ["label"])


def test_image_folders_with_one_class_or_a_decompression_bomb_are_errors(tmp_path):
    from PIL import Image

    (tmp_path / "one" / "cats").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "one" / "cats" / "a.png")
    with pytest.raises(DataFileError, match="one class folder"):
        ImageFolder.scan(tmp_path / "one")
    Image.new("1", (14000, 14000)).save(tmp_path / "bomb.png")  # 196 Mpx: over PIL's limit, 2 x 89 Mpx
    with pytest.raises(DataFileError, match="bomb.png: refused as a possible decompression bomb"):
        ImageFolder([tmp_path / "bomb.png"], [0], 8)[0]


# --- 3. degenerate genotypes and primitive sets -----------------------------------------------------------------
def _genotype(tmp_path: Path, **change) -> Path:
    cell = {"inputs": 2, "nodes": [[["conv_3", 0], ["skip_connect", 1]], [["max_pool_3", 2], ["conv_5", 0]]],
            "concat": [2, 3]}
    data = {"format": "darts-genotype", "version": 1, "family": "conv1d",
            "primitives": ["none", "skip_connect", "max_pool_3", "conv_3", "conv_5"],
            "cells": {"normal": {**cell, **change}, "reduce": cell}}
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, message", [
    ({"nodes": [[["none", 0], ["none", 1]], [["none", 2], ["none", 0]]]}, "'none' on every edge"),
    ({"concat": [0, 1]}, "only the cell's inputs"),
    ({"concat": [2, 3, 3]}, "lists state 3 twice"),
])
def test_degenerate_genotypes_are_errors_naming_the_field(tmp_path, capsys, change, message):
    assert main(["genotype", "show", str(_genotype(tmp_path))]) == 0
    capsys.readouterr()
    assert main(["genotype", "show", str(_genotype(tmp_path, **change))]) == 2
    error = capsys.readouterr().err
    assert "cells.normal" in error and message in error


@pytest.mark.parametrize("primitives, message", [("[]", "model.primitives is empty"),
                                                 ("[none]", "holds only 'none'")])
def test_an_empty_or_all_zero_primitive_set_fails_at_configuration_time(tmp_path, capsys, primitives, message):
    assert main(["search", "motifs-quick", "--model.primitives", primitives, "--runs", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err and not any(tmp_path.iterdir())


# --- 4. one error boundary ---------------------------------------------------------------------------------
def test_hostile_nesting_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["genotype", "show", str(tmp_path / "deep.json")]) == 2
    error = capsys.readouterr().err
    assert "nested too deeply" in error and len(error.strip().splitlines()) == 1


def test_a_read_only_runs_folder_is_a_one_line_error(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o500)
    try:
        assert main(["search", "motifs-quick", "--runs", str(runs), *TINY]) == 2
    finally:
        runs.chmod(0o700)
    error = capsys.readouterr().err
    assert "Permission denied" in error and len(error.strip().splitlines()) == 1


def test_a_failing_primitive_factory_is_named_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def broken(channels: int, stride: int) -> nn.Module:
        raise RuntimeError("kernel table missing")

    with isolated_plugins():
        darts.register_primitive("conv1d", "broken_op")(broken)
        arguments = ["search", "motifs-quick", "--model.primitives", "[broken_op, skip_connect]", "--runs",
                     str(tmp_path), *TINY]
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert "primitive 'broken_op' of family 'conv1d' failed to build" in error and "kernel table missing" in error
        with pytest.raises(Exception, match="broken_op"):
            main([*arguments, "--debug"])


def test_an_unexpected_failure_is_one_line_exit_1_with_an_error_event(tmp_path, capsys, monkeypatch):
    from darts.training import trainer

    def explode(self, *args, **kwargs):
        raise ZeroDivisionError("something deep")

    monkeypatch.setattr(trainer.Trainer, "evaluate", explode)
    assert main(["search", "motifs-quick", "--runs", str(tmp_path), *TINY]) == 1
    error = capsys.readouterr().err
    assert "unexpected ZeroDivisionError: something deep" in error and "--debug" in error
    run = next(tmp_path.iterdir())
    events = [json.loads(line) for line in (run / "events.jsonl").open()]
    assert events[-1]["event"] == "error" and events[-1]["type"] == "ZeroDivisionError"


DISK_FULL = """
import resource, sys
from darts.cli import main
from darts.training import callbacks

original = callbacks.Checkpoint.after_epoch

def after_epoch(self, trainer):
    if trainer.epoch == 2:  # the second epoch's checkpoint no longer fits
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.path.stat().st_size - 1, resource.RLIM_INFINITY))
    original(self, trainer)

callbacks.Checkpoint.after_epoch = after_epoch
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_full_disk_keeps_the_last_checkpoint_and_the_run_resumes(tmp_path):
    arguments = ["search", "motifs-quick", "--runs", str(tmp_path / "runs"), *TINY, "--search.epochs", "3"]
    done = subprocess.run([sys.executable, "-c", DISK_FULL, *arguments], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr
    assert "run stopped: cannot write" in done.stderr and "File too large" in done.stderr
    assert "Traceback" not in done.stderr
    run = next((tmp_path / "runs").iterdir())
    assert load_torch(run / "checkpoint.pt")["epoch"] == 1
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 1  # the header and epoch 1, never epoch 2
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert main(["search", "--resume", str(run)]) == 0
    assert json.loads((run / "results.json").read_text())["epochs"] == 3


# --- 6. plugins that misbehave are named ------------------------------------------------------------------------
def test_a_hook_returning_the_wrong_type_is_named_and_skipped(capsys):
    plugin = types.SimpleNamespace(darts_add_primitives=hookimpl(lambda: "conv_3"),
                                   darts_add_genotypes=hookimpl(lambda: {"MINE": "not a genotype"}))
    with isolated_plugins() as manager:
        with pytest.warns(PluginLoadWarning) as record:
            darts.register_plugin(plugin, name="sloppy")
        messages = " | ".join(str(w.message) for w in record)
        assert "sloppy" in messages and "returned a str; expected a list of Primitive" in messages
        assert "'not a genotype' (str); expected a dict of names to Genotype" in messages
        assert "MINE" not in manager.registry.genotype_names and "conv1d" in manager.registry.family_names
        assert main(["plugins"]) == 0  # every command still works


def test_a_misspelt_hook_and_a_plugin_calling_sys_exit_are_named(tmp_path, monkeypatch):
    from tests.test_plugins import write_fake_distribution

    write_fake_distribution(tmp_path, "dist-typo", {"typo": "typo_plugin"}, {"typo_plugin": """
        from darts import hookimpl
        @hookimpl
        def darts_add_primitive():
            return []
    """})
    write_fake_distribution(tmp_path, "dist-exit", {"quitter": "quitter_plugin"},
                            {"quitter_plugin": "import sys\nsys.exit(3)\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginLoadWarning) as record:
        manager = create_plugin_manager()
    messages = " | ".join(str(w.message) for w in record)
    assert "typo (dist-typo 1.0) implements darts_add_primitive, which is no darts hook; did you mean " \
           "'darts_add_primitives'?" in messages
    assert "quitter (dist-exit 1.0)" in messages and "SystemExit: 3" in messages
    assert "conv1d" in manager.registry.family_names


# --- 7. run folders are owned ----------------------------------------------------------------------------------
def test_a_run_folder_in_use_is_refused_with_the_holders_process_id(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from darts.runs import lock_run_dir
        lock_run_dir({str(tmp_path)!r})
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"in use by process {holder.pid}"):
            lock_run_dir(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    lock_run_dir(tmp_path)  # the kernel released the dead holder's lock
    unlock_run_dir(tmp_path)
    assert not (tmp_path / ".lock").exists()


def test_orphaned_temporary_files_are_swept_and_files_follow_the_umask(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".metrics.csv.{int(dead.stdout)}.x1y2.tmp"
    orphan.write_bytes(b"\0" * 1000)
    mine = tmp_path / f".other.{os.getpid()}.abc.tmp"  # a write in progress in this process stays
    mine.write_bytes(b"")
    previous = os.umask(0o022)
    try:
        written = atomic_write_text(tmp_path / "file.txt", "x")
    finally:
        os.umask(previous)
    assert not orphan.exists() and mine.exists() and sweep_orphans(tmp_path) == []
    assert written.stat().st_mode & 0o777 == 0o644


def test_genotype_plot_refuses_to_overwrite(tmp_path, capsys):
    assert main(["genotype", "plot", "DARTS_V2", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "DARTS_V2.png").read_bytes()
    assert main(["genotype", "plot", "DARTS_V2", "--out", str(tmp_path)]) == 2
    assert "DARTS_V2.png exists; refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "DARTS_V2.png").read_bytes() == before


# --- 8. killed trainings and benchmarks resume ----------------------------------------------------------------
def _kill_when(arguments: list[str], ready, timeout: float = 180) -> None:
    """Start ``darts ARGUMENTS``, and SIGKILL it once ``ready()`` is true."""
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "darts", *arguments], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None and not ready():
        time.sleep(0.02)
    assert process.poll() is None, "the command ended before the moment to kill it"
    process.send_signal(signal.SIGKILL)
    process.wait()


def _checkpointed(runs: Path, pattern: str = "*") -> bool:
    return any('"event": "checkpoint"' in p.read_text() for p in runs.glob(f"{pattern}/events.jsonl"))


@pytest.mark.slow
def test_a_killed_training_resumes_to_the_same_model(tmp_path):
    import torch

    options = ["train", "motifs-quick", "--genotype", str(_genotype(tmp_path)), "--data.samples", "256",
               "--train.epochs", "4", "--model.channels", "4", "--model.layers", "2", "--quiet"]
    _kill_when([*options, "--runs", str(tmp_path / "killed")], lambda: _checkpointed(tmp_path / "killed"))
    (run,) = (tmp_path / "killed").iterdir()
    assert not (run / "results.json").exists()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert main([*options, "--runs", str(tmp_path / "reference")]) == 0
    (reference,) = (tmp_path / "reference").iterdir()
    resumed, original = (torch.load(r / "model.pt", weights_only=True) for r in (run, reference))
    assert resumed.keys() == original.keys() and all(torch.equal(resumed[k], original[k]) for k in original)
    assert json.loads((run / "results.json").read_text())["test"] == \
        json.loads((reference / "results.json").read_text())["test"]


@pytest.mark.slow
def test_a_killed_benchmark_resumes_to_the_same_table(tmp_path, capsys):
    import pandas as pd

    options = ["bench", "p3b5", "--quick", "--quiet", "--data.documents", "120", "--data.test_documents", "40",
               "--data.sequence_length", "24", "--data.vocab_size", "200", "--model.channels", "4",
               "--model.embedding_dim", "8", "--train.channels", "4", "--search.epochs", "2",
               "--search.warmup_epochs", "0", "--train.epochs", "3", "--bench.orders", "[first]",
               "--bench.random_genotypes", "1", "--bench.transfer", "null", "--bench.baseline_filters", "8",
               "--search.selection", "alpha", "--log.plots", "false"]
    # killed in the random genotype's training, after its first epoch: the search and its training are done
    _kill_when([*options, "--runs", str(tmp_path / "killed")],
               lambda: _checkpointed(tmp_path / "killed", "*/train-random-1-seed0"))
    (bench,) = (tmp_path / "killed").iterdir()
    assert (bench / "train-first-order-seed0" / "results.json").exists()
    assert not (bench / "results.csv").exists()
    finished = (bench / "search-first-order-seed0" / "results.json").stat().st_mtime_ns
    assert main(["bench", "p3b5", "--resume", str(bench), "--quiet"]) == 0
    assert (bench / "search-first-order-seed0" / "results.json").stat().st_mtime_ns == finished  # reused
    assert "resumed" in (bench / "train-random-1-seed0" / "log.txt").read_text()
    assert main([*options, "--runs", str(tmp_path / "reference")]) == 0
    (reference,) = (tmp_path / "reference").iterdir()
    timing = ["search seconds", "train seconds"]
    pd.testing.assert_frame_equal(pd.read_csv(bench / "results.csv").drop(columns=timing),
                                  pd.read_csv(reference / "results.csv").drop(columns=timing), check_exact=True)
    assert main(["bench", "p3b5", "--resume", str(bench)]) == 2
    assert "finished already" in capsys.readouterr().err


# --- 5. a finite blow-up stops the run ---------------------------------------------------------------------------
def test_an_exploding_recurrent_search_stops_like_a_nan(tmp_path, capsys):
    assert main(["search", "ptb-quick", "--search.loss_limit", "1e-3", "--search.epochs", "1",
                 "--search.warmup_epochs", "0", "--runs", str(tmp_path), "--quiet"]) == 1
    assert "run stopped: exploding (above loss_limit 0.001)" in capsys.readouterr().err
    (run,) = tmp_path.iterdir()
    assert not (run / "genotype.json").exists()
    errors = [e for e in map(json.loads, (run / "events.jsonl").open()) if e["event"] == "error"]
    assert len(errors) == 1  # recorded once, by the run itself
