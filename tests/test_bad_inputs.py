"""A catalogue of bad inputs across genotypes, configurations, CLI usage, data files and plugins.

Every entry is run through the ``darts`` command line in-process and must end in its class of outcome:

- ``error``: exit 2, a message on stderr that holds the expected words, no traceback, and no run folder left;
- ``usage``: argparse's usage error (exit 2);
- ``warning``: the command still works, and a warning names the problem.

None may be a raw traceback, a silent acceptance or code that runs. Property-based tests (hypothesis) check that
every generated genotype or configuration is either valid or a clean error.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darts.cli import main
from darts.config import ConfigError, load_config
from darts.genotype import Genotype, GenotypeError
from darts.plugins import get_registry
from darts.registry import RegistryError

VALID_CELL = {"inputs": 2, "nodes": [[["conv_3", 0], ["skip_connect", 1]], [["max_pool_3", 2], ["conv_5", 0]]],
              "concat": [2, 3]}
VALID = {"format": "darts-genotype", "version": 1, "family": "conv1d",
         "primitives": ["none", "skip_connect", "max_pool_3", "conv_3", "conv_5"],
         "cells": {"normal": VALID_CELL, "reduce": VALID_CELL}}
SMALL = ["--model.channels", "4", "--model.layers", "2", "--model.nodes", "2", "--search.epochs", "1",
         "--search.warmup_epochs", "0", "--quiet"]


def changed(path: str, value) -> dict:
    """VALID with ``path`` (dotted; ``-`` deletes) set to ``value``."""
    data = copy.deepcopy(VALID)
    keys = path.split(".")
    target = data
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value == "-":
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


# --- genotypes: (id, file content or JSON value, words expected) ----------------------------------------------
GENOTYPES = [
    ("not-json", "{not json", "not valid JSON"),
    ("empty-file", "", "not valid JSON"),
    ("top-level-list", [], "must be a JSON object"),
    ("top-level-null", None, "must be a JSON object"),
    ("top-level-number", 3, "must be a JSON object"),
    ("wrong-format", changed("format", "other"), "field 'format'"),
    ("format-missing", changed("format", "-"), "field 'format'"),
    ("version-future", changed("version", 99), "field 'version'"),
    ("version-zero", changed("version", 0), "field 'version'"),
    ("version-text", changed("version", "1"), "field 'version'"),
    ("family-unknown", changed("family", "conv9d"), "unknown family 'conv9d'"),
    ("family-number", changed("family", 1), "field 'family'"),
    ("family-missing", changed("family", "-"), "field 'family'"),
    ("primitives-not-list", changed("primitives", "conv_3"), "field 'primitives'"),
    ("primitive-unknown", changed("primitives", ["none", "conv_33"]), "unknown primitive 'conv_33'"),
    ("primitive-number", changed("primitives", ["none", 3]), "primitives[1]"),
    ("cells-missing", changed("cells", "-"), "field 'cells'"),
    ("cells-list", changed("cells", []), "field 'cells'"),
    ("cell-missing", changed("cells.reduce", "-"), "cells.reduce"),
    ("cell-extra", changed("cells.middle", VALID_CELL), "cells.middle"),
    ("cell-not-mapping", changed("cells.normal", [1, 2]), "cells.normal"),
    ("inputs-3", changed("cells.normal.inputs", 3), "cells.normal.inputs"),
    ("inputs-text", changed("cells.normal.inputs", "2"), "cells.normal"),
    ("nodes-empty", changed("cells.normal.nodes", []), "cells.normal.nodes"),
    ("nodes-not-list", changed("cells.normal.nodes", "conv_3"), "cells.normal"),
    ("node-empty", changed("cells.normal.nodes.0", []), "cells.normal.nodes[0]"),
    ("node-not-list", changed("cells.normal.nodes.0", "conv_3"), "cells.normal.nodes[0]"),
    ("gene-short", changed("cells.normal.nodes.0.0", ["conv_3"]), "cells.normal.nodes[0][0]"),
    ("gene-long", changed("cells.normal.nodes.0.0", ["conv_3", 0, 1]), "cells.normal.nodes[0][0]"),
    ("gene-bool-index", changed("cells.normal.nodes.0.0", ["conv_3", True]), "cells.normal.nodes[0][0]"),
    ("gene-float-index", changed("cells.normal.nodes.0.0", ["conv_3", 0.0]), "cells.normal.nodes[0][0]"),
    ("gene-negative-index", changed("cells.normal.nodes.0.0", ["conv_3", -1]), "input index -1"),
    ("gene-future-index", changed("cells.normal.nodes.0.0", ["conv_3", 2]), "input index 2"),
    ("gene-unknown-op", changed("cells.normal.nodes.0.0", ["conv_7", 0]), "uses primitive 'conv_7'"),
    ("gene-op-not-searched", changed("primitives", ["none", "skip_connect", "max_pool_3", "conv_3"]),
     "not in the recorded primitive set"),
    ("gene-op-number", changed("cells.normal.nodes.0.0", [3, 0]), "cells.normal.nodes[0][0]"),
    ("concat-empty", changed("cells.normal.concat", []), "cells.normal.concat"),
    ("concat-out-of-range", changed("cells.normal.concat", [2, 9]), "cells.normal.concat[1]"),
    ("concat-negative", changed("cells.normal.concat", [-1, 2]), "cells.normal.concat[0]"),
    ("concat-text", changed("cells.normal.concat", ["2"]), "cells.normal.concat[0]"),
    ("concat-duplicate", changed("cells.normal.concat", [2, 3, 3]), "lists state 3 twice"),
    ("concat-only-inputs", changed("cells.normal.concat", [0, 1]), "only the cell's inputs"),
    ("all-none", changed("cells.normal.nodes", [[["none", 0], ["none", 1]], [["none", 2], ["none", 0]]]),
     "'none' on every edge"),
    ("nested-100k", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("unknown-name", None, "unknown genotype"),
]


def _write_genotype(folder: Path, case: str, content) -> str:
    if case == "unknown-name":
        return "DARTS_V9"
    path = folder / f"{case}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


# --- configurations: (id, overrides after motifs-quick, words expected) ------------------------------------------
CONFIGURATIONS = [
    ("epochs-zero", ["--search.epochs", "0"], "search.epochs"),
    ("epochs-negative", ["--search.epochs", "-3"], "search.epochs"),
    ("epochs-text", ["--search.epochs", "many"], "search.epochs"),
    ("epochs-float", ["--search.epochs", "2.5"], "search.epochs"),
    ("epochs-list", ["--search.epochs", "[1, 2]"], "search.epochs"),
    ("batch-zero", ["--search.batch_size", "0"], "search.batch_size"),
    ("lr-zero", ["--search.lr", "0"], "search.lr"),
    ("lr-negative", ["--search.lr", "-0.1"], "search.lr"),
    ("lr-text", ["--search.lr", "fast"], "search.lr"),
    ("arch-lr-zero", ["--search.arch_lr", "0"], "search.arch_lr"),
    ("split-zero", ["--search.split", "0"], "search.split"),
    ("split-one", ["--search.split", "1"], "search.split"),
    ("split-large", ["--search.split", "1.5"], "search.split"),
    ("order-third", ["--search.order", "third"], "search.order"),
    ("difference-back", ["--search.difference", "backward"], "search.difference"),
    ("selection-vote", ["--search.selection", "vote"], "search.selection"),
    ("selection-epochs-negative", ["--search.selection_epochs", "-1"], "search.selection_epochs"),
    ("warmup-all", ["--search.warmup_epochs", "10"], "search.warmup_epochs"),
    ("warmup-negative", ["--search.warmup_epochs", "-1"], "search.warmup_epochs"),
    ("radius-zero", ["--search.radius", "0"], "search.radius"),
    ("momentum-negative", ["--search.momentum", "-1"], "search.momentum"),
    ("weight-decay-negative", ["--search.weight_decay", "-1"], "search.weight_decay"),
    ("grad-clip-zero", ["--search.grad_clip", "0"], "search.grad_clip"),
    ("loss-limit-zero", ["--search.loss_limit", "0"], "search.loss_limit"),
    ("schedule-linear", ["--search.schedule", "linear"], "search.schedule"),
    ("optimizer-adam", ["--train.optimizer", "adam"], "train.optimizer"),
    ("betas-one", ["--search.arch_betas", "[0.5]"], "search.arch_betas"),
    ("genotype-choice", ["--search.genotype", "median"], "search.genotype"),
    ("train-epochs-zero", ["--train.epochs", "0"], "train.epochs"),
    ("train-valid-one", ["--train.valid_fraction", "1"], "train.valid_fraction"),
    ("train-channels-zero", ["--train.channels", "0"], "train.channels"),
    ("train-model-unknown", ["--train.model", "{chanels: 4}"], "chanels"),
    ("channels-zero", ["--model.channels", "0"], "model.channels"),
    ("layers-zero", ["--model.layers", "0"], "model.layers"),
    ("nodes-zero", ["--model.nodes", "0"], "model.nodes"),
    ("multiplier-zero", ["--model.multiplier", "0"], "model.multiplier"),
    ("family-unknown", ["--model.family", "conv3d"], "unknown family 'conv3d'"),
    ("family-number", ["--model.family", "[1]"], "model.family"),
    ("primitives-empty", ["--model.primitives", "[]"], "model.primitives is empty"),
    ("primitives-none", ["--model.primitives", "[none]"], "holds only 'none'"),
    ("primitives-unknown", ["--model.primitives", "[conv_3, sep_conv_9]"], "unknown primitive 'sep_conv_9'"),
    ("primitives-twice", ["--model.primitives", "[conv_3, conv_3]"], "listed twice"),
    ("primitives-text", ["--model.primitives", "conv_3"], "model.primitives"),
    ("global-pool", ["--model.global_pool", "median"], "model.global_pool"),
    ("alphas-mode", ["--model.alphas", "per_edge"], "model.alphas"),
    ("partial-zero", ["--model.partial_channels", "0"], "model.partial_channels"),
    ("dropout-one", ["--model.dropout_output", "1"], "model.dropout_output"),
    ("unknown-section", ["--serch.epochs", "3"], "did you mean"),
    ("unknown-key", ["--search.epoch", "3"], "did you mean 'search.epochs'"),
    ("unknown-top", ["--sed", "3"], "sed"),
    ("task-unknown", ["--task", "mnist"], "mnist"),
    ("data-unknown", ["--data.sample", "100"], "data.sample"),
    ("data-samples-small", ["--data.samples", "1"], "data.samples"),
    ("data-classes-one", ["--data.classes", "1"], "data.classes"),
    ("data-length-small", ["--data.length", "2"], "data.length"),
    ("seed-text", ["--seed", "abc"], "seed"),
    ("seed-float", ["--seed", "1.5"], "seed"),
    ("task-weights-text", ["--task_weights", "heavy"], "task_weights"),
    ("bench-seeds-zero", ["--bench.seeds", "0"], "bench.seeds"),
    ("bench-orders", ["--bench.orders", "[fourth]"], "bench.orders"),
    ("bench-family", ["--bench.families", "[conv7d]"], "conv7d"),
    ("override-no-value", ["--search.epochs"], "search.epochs"),
    ("override-bad-yaml", ["--search.epochs", "[1,"], "search.epochs"),
]

# configuration files: (id, file text, words expected)
CONFIG_FILES = [
    ("yaml-broken", "task: motifs\nsearch: {epochs: 3\n", "YAML"),
    ("yaml-list", "- task\n- motifs\n", "mapping"),
    ("yaml-empty", "", "task"),
    ("yaml-no-task", "search: {epochs: 3}\n", "task"),
    ("yaml-nested", "a: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply"),
    ("yaml-binary", b"\xff\xfe\x00garbage\x00".decode("latin-1"), "not UTF-8"),
    ("yaml-tab-indent", "task: motifs\nsearch:\n\tepochs: 3\n", "YAML"),
    ("yaml-object", "task: !!python/object/apply:os.system ['touch pwned-config']\n", "YAML"),
]


# --- CLI usage: (id, arguments, outcome, words expected) ---------------------------------------------------------
def cli_cases(d: Path) -> list[tuple[str, list[str], str, str]]:
    return [
        ("unknown-flag", ["--verbose"], "usage", ""),
        ("unknown-command", ["serch"], "usage", ""),
        ("search-no-config", ["search"], "error", "give a CONFIG"),
        ("search-missing-file", ["search", str(d / "nope.yaml")], "error", "nope.yaml"),
        ("search-folder-as-config", ["search", str(d)], "error", str(d)),
        ("search-resume-missing", ["search", "--resume", str(d / "nothing")], "error", "nothing"),
        ("search-resume-not-run", ["search", "--resume", str(d)], "error", "not a run directory"),
        ("search-resume-with-config", ["search", "motifs-quick", "--resume", str(d)], "error",
         "--resume continues a run"),
        ("search-runs-under-file", ["search", "motifs-quick", "--runs", str(d / "file.txt" / "runs"), *SMALL],
         "error", "file.txt"),
        ("train-no-genotype", ["train", "motifs-quick"], "error", "train needs --genotype"),
        ("train-genotype-missing", ["train", "motifs-quick", "--genotype", str(d / "nope.json")], "error",
         "nope.json"),
        ("train-genotype-family-unknown", ["train", "motifs-quick", "--genotype", "DARTS_V2", "--genotype-family",
                                           "conv5d"], "error", "conv5d"),
        ("train-wrong-family", ["train", "motifs-quick", "--genotype", "DARTS_RNN_V2"], "error", "recurrent"),
        ("evaluate-missing", ["evaluate", str(d / "nothing")], "error", "has no run.json"),
        ("evaluate-not-run", ["evaluate", str(d)], "error", "has no run.json"),
        ("evaluate-no-argument", ["evaluate"], "usage", ""),
        ("summary-bad-genotype", ["summary", "motifs-quick", "--genotype", "NOPE"], "error", "unknown genotype"),
        ("summary-unknown-option", ["summary", "motifs-quick", "--jsn"], "error", "jsn"),
        ("plugins-extra", ["plugins", "--search.epochs", "3"], "usage", ""),
        ("genotype-no-action", ["genotype"], "usage", ""),
        ("genotype-show-unknown", ["genotype", "show", "DARTS_V9"], "error", "did you mean 'DARTS_V2'"),
        ("genotype-show-empty-run", ["genotype", "show", str(d)], "error", "has no genotype.json"),
        ("genotype-plot-unknown", ["genotype", "plot", "DARTS_V9"], "error", "unknown genotype"),
        ("bench-unknown", ["bench", "cifar"], "usage", ""),
        ("bench-full-and-config", ["bench", "p3b5", "--full", "--config", "p3b5-quick"], "error", "not both"),
        ("bench-full-without-data", ["bench", "p3b5", "--full", "--runs", str(d / "bench")], "error",
         "set data.path"),
        ("bench-resume-not-bench", ["bench", "p3b5", "--resume", str(d)], "error", "not a benchmark directory"),
        ("bench-resume-with-config", ["bench", "p3b5", "--resume", str(d), "--config", "p3b5-quick"], "error",
         "--resume continues a benchmark"),
        ("candle-missing", ["search", "p3b5-quick", "--candle", str(d / "nope.txt")], "error", "nope.txt"),
        ("candle-garbage", ["search", "p3b5-quick", "--candle", str(d / "file.txt")], "error", "CANDLE"),
        ("quickstart-bad-override", ["quickstart", "--search.epochs", "0", "--runs", str(d / "qs")], "error",
         "search.epochs"),
        ("perturbation-language-model", ["search", "ptb-quick", "--search.selection", "perturbation",
                                         "--runs", str(d / "ptb")], "error", "selects by alpha"),
        ("lse-pool-recurrent", ["search", "p3b5-quick", "--model.family", "recurrent", "--model.global_pool", "lse",
                                "--data.documents", "40", "--data.test_documents", "10", "--runs", str(d / "lse")],
         "error", "model.global_pool 'lse' applies to conv and linear cells"),
    ]


# --- data files: (id, builder(folder) -> arguments, words expected) -----------------------------------------------
def _npz(name: str, **arrays):
    def build(d: Path) -> list[str]:
        np.savez(d / f"{name}.npz", **arrays)
        return ["search", str(d / "arrays.yaml"), "--data.path", str(d / f"{name}.npz")]
    return build


RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 12)).astype(np.float32)
Y = np.arange(40) % 3


def _with(array: np.ndarray, index, value) -> np.ndarray:
    array = array.copy()
    array[index] = value
    return array


def _raw(name: str, content: bytes):
    def build(d: Path) -> list[str]:
        (d / name).write_bytes(content)
        return ["search", str(d / "arrays.yaml"), "--data.path", str(d / name)]
    return build


def _text(name: str, content: str, *extra: str):
    def build(d: Path) -> list[str]:
        (d / name).write_text(content)
        return ["search", "p3b5-quick", "--data.source", "text", "--data.path", str(d / name), "--data.tasks",
                "[label]", *extra]
    return build


def _p3b3(name: str, **arrays):
    def build(d: Path) -> list[str]:
        folder = d / name
        folder.mkdir()
        good = {"train_X": RNG.integers(1, 50, (30, 10)), "train_Y": RNG.integers(0, 3, (30, 4)),
                "test_X": RNG.integers(1, 50, (10, 10)), "test_Y": RNG.integers(0, 3, (10, 4))}
        for key, value in {**good, **arrays}.items():
            if value is not None:
                np.save(folder / f"{key}.npy", value)
        return ["search", "p3b5-quick", "--data.source", "p3b3", "--data.path", str(folder)]
    return build


def _cifar(name: str, batch=None, labels=None, drop: str | None = None, raw: bytes | None = None):
    def build(d: Path) -> list[str]:
        folder = d / name
        folder.mkdir()
        for part in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            if part == drop:
                continue
            content = {b"data": RNG.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": labels or [0, 1, 2, 3]}
            if part == "data_batch_1" and batch is not None:
                content = batch
            data = raw if (part == "data_batch_1" and raw is not None) else pickle.dumps(content, protocol=2)
            (folder / part).write_bytes(data)
        return ["search", "cifar10-quick", "--data.path", str(folder)]
    return build


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def _images(name: str, classes: dict[str, list[bytes | None]]):
    def build(d: Path) -> list[str]:
        from PIL import Image

        root = d / name
        for label, images in classes.items():
            (root / label).mkdir(parents=True)
            for i, content in enumerate(images):
                if content is None:
                    Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / label / f"{i}.png")
                else:
                    (root / label / f"{i}.png").write_bytes(content)
        return ["search", "imagenet-quick", "--data.path", str(root), "--data.image_size", "8"]
    return build


def _corpus(name: str, files: dict[str, bytes]):
    def build(d: Path) -> list[str]:
        folder = d / name
        folder.mkdir()
        for file, content in files.items():
            (folder / file).write_bytes(content)
        return ["search", "ptb-quick", "--data.source", "files", "--data.path", str(folder)]
    return build


GOOD_TEXT = "text,label\n" + "".join(f"report {i} mentions word{i % 3},{'abc'[i % 3]}\n" for i in range(30))
DATA_FILES = [
    ("npz-nan", _npz("nan", x=_with(X, (3, 4), np.nan), y=Y), "NaN or infinite"),
    ("npz-inf", _npz("inf", x=_with(X, (5, 1), np.inf), y=Y), "NaN or infinite"),
    ("npz-neg-inf", _npz("ninf", x=_with(X, (0, 0), -np.inf), y=Y), "NaN or infinite"),
    ("npz-complex", _npz("complex", x=X.astype(np.complex64), y=Y), "complex values"),
    ("npz-single-class", _npz("single", x=X, y=np.zeros(40, int)), "a single class"),
    ("npz-float-labels", _npz("floaty", x=X, y=Y.astype(float)), "integer class labels"),
    ("npz-string-labels", _npz("strings", x=X, y=np.array(["a", "b"] * 20)), "integer class labels"),
    ("npz-2d-labels", _npz("labels2d", x=X, y=Y[:, None]), "1-D array"),
    ("npz-rows-differ", _npz("rows", x=X, y=Y[:30]), "rows"),
    ("npz-no-keys", _npz("nokeys", a=X), "expected arrays"),
    ("npz-5d", _npz("fived", x=X.reshape(40, 1, 1, 3, 4), y=Y), "shape"),
    ("npz-1d", _npz("oned", x=X[:, 0], y=Y), "shape"),
    ("npz-empty-train", _npz("empty", x_train=X[:0], y_train=Y[:0], x_test=X, y_test=Y), "empty"),
    ("npz-shapes-differ", _npz("shapes", x_train=X, y_train=Y, x_test=X[:, :5], y_test=Y), "shape"),
    ("npz-strings", _npz("textx", x=np.array([["a"] * 12] * 40), y=Y), "numbers"),
    ("npz-objects", _raw("objects.npz", b"PK\x03\x04garbage"), "not a readable .npz"),
    ("npz-not-zip", _raw("plain.npz", b"hello"), "not a readable .npz"),
    ("npz-missing", lambda d: ["search", str(d / "arrays.yaml"), "--data.path", str(d / "absent.npz")],
     "file not found"),
    ("text-missing-column", _text("nocol.csv", "body,label\nhello,a\nworld,b\n"), "missing"),
    ("text-empty-file", _text("empty.csv", ""), "empty"),
    ("text-header-only", _text("header.csv", "text,label\n"), "no rows"),
    ("text-blank-labels", _text("blank.csv", "text,label\nhello,\nworld,b\nagain,a\n"), "empty cells"),
    ("text-no-words", _text("nowords.csv", "text,label\n" + "...,a\n!!!,b\n" * 10), "holds a word"),
    ("text-single-class", _text("oneclass.csv", "text,label\n" + "hello world,a\n" * 10), "a single class"),
    ("text-binary", _text("binary.csv", "\x00\x01\x02\x03"), "label"),
    ("text-test-missing", _text("good.csv", GOOD_TEXT, "--data.test_path", "/nonexistent/test.csv"),
     "file not found"),
    ("p3b3-missing-file", _p3b3("p_missing", test_Y=None), "file not found"),
    ("p3b3-float-tokens", _p3b3("p_float", train_X=RNG.random((30, 10))), "must be integers"),
    ("p3b3-negative-token", _p3b3("p_neg", train_X=-RNG.integers(1, 5, (30, 10))), "negative"),
    ("p3b3-rows-differ", _p3b3("p_rows", train_Y=RNG.integers(0, 3, (20, 4))), "must match row for row"),
    ("p3b3-3d", _p3b3("p_3d", train_X=RNG.integers(1, 5, (30, 10, 2))), "2-D"),
    ("p3b3-single-class", _p3b3("p_single", train_Y=np.zeros((30, 4), int)), "a single class"),
    ("p3b3-columns-differ", _p3b3("p_cols", train_Y=RNG.integers(0, 3, (30, 2))), "label columns"),
    ("p3b3-vocabulary-small", lambda d: [*_p3b3("p_vocab")(d), "--data.vocab_size", "10"], "out of range"),
    ("p3b3-empty-array", _p3b3("p_emptyarray", test_X=np.zeros((0, 10), int)), "empty"),
    ("cifar-pickle-payload", _cifar("c_payload", batch={b"data": _Payload(), b"labels": [0]}),
     "not a pickle of plain data"),
    ("cifar-huge-label", _cifar("c_huge", labels=[0, 1, 2, 10 ** 6]), "out of range"),
    ("cifar-negative-label", _cifar("c_negative", labels=[0, 1, 2, -1]), "negative"),
    ("cifar-single-class", _cifar("c_single", labels=[4, 4, 4, 4]), "a single class"),
    ("cifar-wrong-shape", _cifar("c_shape", batch={b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}),
     "expected data of shape"),
    ("cifar-float-pixels", _cifar("c_float", batch={b"data": np.zeros((4, 3072)), b"labels": [0] * 4}),
     "uint8"),
    ("cifar-no-labels", _cifar("c_nolabels", batch={b"data": np.zeros((4, 3072), np.uint8)}), "labels"),
    ("cifar-garbage", _cifar("c_garbage", raw=b"\x80\x04garbage"), "not a pickle of plain data"),
    ("cifar-missing-batch", _cifar("c_missing", drop="test_batch"), "file not found"),
    ("cifar-not-a-folder", lambda d: ["search", "cifar10-quick", "--data.path", str(d / "file.txt")],
     "not a folder"),
    ("images-one-class", _images("i_one", {"cats": [None, None]}), "one class folder"),
    ("images-empty-class", _images("i_empty", {"cats": [None], "dogs": []}), "no image files"),
    ("images-corrupt", _images("i_corrupt", {"cats": [b"not a png"] * 4, "dogs": [b"nor this"] * 4}),
     "not a readable image"),
    ("ptb-missing-file", _corpus("w_missing", {"train.txt": b"a b c\n", "valid.txt": b"a b\n"}), "missing"),
    ("ptb-empty-train", _corpus("w_empty", {"train.txt": b"\n\n", "valid.txt": b"a\n", "test.txt": b"a\n"}),
     "has no words"),
    ("ptb-not-utf8", _corpus("w_latin", {"train.txt": b"caf\xe9 au lait\n", "valid.txt": b"a\n",
                                         "test.txt": b"a\n"}), "not UTF-8"),
]


# --- plugins: (id, module source, words expected in the warning) ---------------------------------------------
PLUGINS = [
    ("hook-returns-str", """
        from darts import hookimpl
        @hookimpl
        def darts_add_primitives():
            return "conv_3"
    """, "returned a str; expected a list of Primitive"),
    ("hook-returns-dicts", """
        from darts import hookimpl
        @hookimpl
        def darts_add_families():
            return [{"name": "mine"}]
    """, "expected a list of Family"),
    ("genotype-not-genotype", """
        from darts import hookimpl
        @hookimpl
        def darts_add_genotypes():
            return {"MINE": "conv_3 twice"}
    """, "expected a dict of names to Genotype"),
    ("genotype-invalid", """
        from darts import hookimpl
        from darts.genotype import Genotype, CellGenotype
        @hookimpl
        def darts_add_genotypes():
            cell = CellGenotype(((("conv_3", 0), ("conv_3", 7)),), (2,), 2)
            return {"BROKEN": Genotype("conv1d", ("conv_3",), {"normal": cell, "reduce": cell})}
    """, "genotype 'BROKEN' was ignored"),
    ("misspelt-hook", """
        from darts import hookimpl
        @hookimpl
        def darts_add_primitve():
            return []
    """, "did you mean 'darts_add_primitives'"),
    ("sys-exit-at-import", "import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("raises-at-import", "raise ImportError('needs a GPU')\n", "ImportError: needs a GPU"),
    ("hook-raises", """
        from darts import hookimpl
        @hookimpl
        def darts_add_primitives():
            raise KeyError("table")
    """, "failed in darts_add_primitives"),
    ("hook-wrong-arguments", """
        from darts import hookimpl
        @hookimpl
        def darts_add_primitives(registry):
            return []
    """, "was not registered"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "file.txt").write_text("learning_rate = 0.1\n")
    (d / "arrays.yaml").write_text("task: arrays\nmodel: {channels: 4, layers: 2, nodes: 2}\n"
                                   "search: {epochs: 1, batch_size: 8}\n")
    return d


def _expect_error(arguments: list[str], words: str, capsys, runs: Path | None = None) -> None:
    before = set(runs.iterdir()) if runs is not None and runs.exists() else set()
    status = main(arguments)
    captured = capsys.readouterr()
    assert status == 2, (status, captured.err[-2000:])
    assert captured.err.startswith("error: ") and words in captured.err, captured.err
    assert "Traceback" not in captured.err + captured.out
    if runs is not None:
        assert (set(runs.iterdir()) if runs.exists() else set()) == before, "a failed command left a run folder"


@pytest.mark.parametrize("case, content, words", GENOTYPES, ids=[c[0] for c in GENOTYPES])
def test_genotypes(folder, capsys, case, content, words):
    source = _write_genotype(folder, case, content)
    for command in (["genotype", "show", source], ["summary", "motifs-quick", "--genotype", source]):
        _expect_error(command, words, capsys)


@pytest.mark.parametrize("case, overrides, words", CONFIGURATIONS, ids=[c[0] for c in CONFIGURATIONS])
def test_configurations(tmp_path, capsys, case, overrides, words):
    _expect_error(["search", "motifs-quick", *overrides, "--runs", str(tmp_path / "runs")], words, capsys,
                  tmp_path / "runs")


@pytest.mark.parametrize("case, text, words", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_configuration_files(tmp_path, capsys, monkeypatch, case, text, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(text, encoding="latin-1")
    _expect_error(["search", str(tmp_path / "config.yaml"), "--runs", str(tmp_path / "runs")], words, capsys,
                  tmp_path / "runs")
    assert not (tmp_path / "pwned-config").exists()


CLI_IDS = [c[0] for c in cli_cases(Path("."))]


@pytest.mark.parametrize("index", range(len(CLI_IDS)), ids=CLI_IDS)
def test_command_lines(folder, capsys, index):
    case, arguments, outcome, words = cli_cases(folder)[index]
    if outcome == "usage":
        with pytest.raises(SystemExit) as exit_:
            main(arguments)
        assert exit_.value.code == 2 and "usage: darts" in capsys.readouterr().err
    else:
        _expect_error(arguments, words, capsys)


@pytest.mark.parametrize("case, build, words", DATA_FILES, ids=[c[0] for c in DATA_FILES])
def test_data_files(folder, tmp_path, capsys, monkeypatch, case, build, words):
    monkeypatch.chdir(tmp_path)
    _expect_error([*build(folder), "--runs", str(tmp_path / "runs"), *SMALL], words, capsys, tmp_path / "runs")
    assert not (tmp_path / "pwned-by-pickle").exists()


@pytest.mark.parametrize("case, source, words", PLUGINS, ids=[c[0] for c in PLUGINS])
def test_plugins(tmp_path, monkeypatch, capsys, case, source, words):
    from darts.plugins import PluginLoadWarning, isolated_plugins
    from tests.test_plugins import write_fake_distribution

    module = f"plugin_{case.replace('-', '_')}"
    write_fake_distribution(tmp_path, f"dist-{case}", {case: module}, {module: textwrap.dedent(source)})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginLoadWarning) as record, isolated_plugins():
        status = main(["plugins", "--json"])
    messages = " | ".join(str(w.message) for w in record)
    assert status == 0 and words in messages and f"dist-{case}" in messages, messages
    listed = json.loads(capsys.readouterr().out)
    assert "conv_3" in {row["primitive"] for row in listed["primitives"]}  # the other plugins still load


def test_the_catalogue_holds_at_least_150_bad_inputs():
    total = len(GENOTYPES) + len(CONFIGURATIONS) + len(CONFIG_FILES) + len(CLI_IDS) + len(DATA_FILES) + len(PLUGINS)
    assert total >= 150, total


# --- property-based: every generated input is valid or a clean error ---------------------------------------------
JSON_LEAVES = st.none() | st.booleans() | st.integers(-3, 12) | st.floats(allow_nan=True) | st.text(max_size=8) \
    | st.sampled_from(["none", "conv_3", "skip_connect", "max_pool_3", "normal", "reduce", "conv1d"])
JSON_VALUES = st.recursive(JSON_LEAVES, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)
PATHS = st.sampled_from(["format", "version", "family", "primitives", "cells", "cells.normal", "cells.normal.inputs",
                         "cells.normal.nodes", "cells.normal.nodes.0", "cells.normal.nodes.0.0",
                         "cells.normal.nodes.1.1", "cells.normal.concat", "cells.reduce.concat", "cells.reduce"])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, value=JSON_VALUES)
def test_any_mutated_genotype_is_valid_or_a_genotype_error(path, value):
    data = changed(path, value)
    try:
        genotype = Genotype.from_dict(json.loads(json.dumps(data)), source="generated")
        genotype.validate(get_registry(), source="generated")
    except GenotypeError as error:
        assert "generated" in str(error) and "field" in str(error)


KEYS = st.sampled_from(["search.epochs", "search.lr", "search.split", "search.order", "search.warmup_epochs",
                        "search.arch_betas", "model.channels", "model.primitives", "model.family", "model.nodes",
                        "model.global_pool", "train.epochs", "train.valid_fraction", "train.model", "data.samples",
                        "data.classes", "seed", "bench.seeds", "search.epoch", "nothing.here"])


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEYS, value=JSON_VALUES)
def test_any_override_is_valid_or_a_config_error(key, value):
    try:
        load_config("motifs-quick", {key: value})
    except (ConfigError, RegistryError, ValueError) as error:  # each a one-line exit 2 at the command line
        assert str(error).strip()
