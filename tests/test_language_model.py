"""Language models on DARTS recurrent cells: the PTB-format corpus, the AWD-LSTM backbone and its training
callbacks (hidden state, BPTT, AR/TAR, NT-ASGD), search and training end to end, resume, paper figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from darts.config import ConfigError, load_config
from darts.data.corpus import EOS, UNK, batchify, corpus_from_lines, generated_corpus, read_corpus, write_corpus
from darts.data.documents import DataFileError
from darts.plugins import load_genotype
from darts.search_space.awd_lstm import (RecurrentLanguageModelNetwork, RecurrentLanguageModelSearch,
                                               embedding_dropout, locked_dropout)
from darts.search_space.recurrent import RecurrentSearchCell
from darts.training import Callback
from darts.training.language_model import (ActivationRegularization, AveragedSGD, BPTTLearningRate, HiddenState,
                                           LanguageModelTrainer, bptt_windows)
from darts.training.trainer import TIMING
from darts.workflows import RunError, evaluate, search, summary, train

TINY = ["--data.train_sentences", "150", "--data.valid_sentences", "40", "--data.test_sentences", "40",
        "--data.vocab_size", "60", "--model.embedding_dim", "8", "--model.hidden_size", "8", "--model.nodes", "3",
        "--search.batch_size", "8", "--train.batch_size", "8", "--lm.bptt", "10", "--lm.eval_batch_size", "4",
        "--train.model", "{embedding_dim: 12, hidden_size: 12}", "--search.epochs", "2",
        "--search.warmup_epochs", "0", "--train.epochs", "3"]


def tiny(*extra: str):
    """A short language-model run on a few sentences, without pictures."""
    return load_config("ptb-quick", [*TINY, "--log.plots", "false", *extra])


# --- data ------------------------------------------------------------------------------------------------
def test_ptb_format_vocabulary_eos_and_unknown_words(tmp_path):
    folder = write_corpus(tmp_path / "corpus", {"train": ["a b", "b c a"], "valid": ["c d"], "test": ["a"]})
    corpus = read_corpus(folder)
    assert corpus.words == ["a", "b", EOS, "c", UNK]  # training words in order of first appearance
    assert corpus.train.tolist() == [0, 1, 2, 1, 3, 0, 2]
    assert corpus.valid.tolist() == [3, 4, 2] and corpus.unknown == {"train": 0, "valid": 1, "test": 0}
    assert corpus.test.tolist() == [0, 2]


def test_a_training_file_with_unk_keeps_its_own_id(tmp_path):
    corpus = corpus_from_lines({"train": ["<unk> x"], "valid": ["y"], "test": ["x"]})
    assert corpus.words == [UNK, "x", EOS] and corpus.valid.tolist() == [0, 2]


@pytest.mark.parametrize("problem, message", [
    ("missing", r"valid.txt: missing; a PTB-style corpus needs train.txt, valid.txt and test.txt \(the folder has "
                r"test.txt, train.txt\)"),
    ("empty", r"test.txt: has no words"),
    ("latin1", r"train.txt: line 2 is not UTF-8"),
    ("file", r"not a folder"),
])
def test_bad_corpus_folders_are_named(tmp_path, problem, message):
    folder = write_corpus(tmp_path / "c", {"train": ["a b", "c"], "valid": ["a"], "test": ["b"]})
    if problem == "missing":
        (folder / "valid.txt").unlink()
    elif problem == "empty":
        (folder / "test.txt").write_text("\n \n")
    elif problem == "latin1":
        (folder / "train.txt").write_bytes("a b\nca\xf1on\n".encode("latin-1"))
    else:
        folder = folder / "train.txt"
    with pytest.raises(DataFileError, match=message):
        read_corpus(folder)


def test_the_files_source_needs_a_path_and_reads_the_folder(tmp_path):
    with pytest.raises(ValueError, match="set data.path to a folder of train.txt"):
        train(load_config("ptb-quick", ["--data.source", "files"]), "DARTS_RNN_V2", tmp_path)
    assert not list(tmp_path.iterdir())
    folder = write_corpus(tmp_path / "corpus", generated_corpus({"train": 60, "valid": 20, "test": 20}, 60, seed=1))
    config = tiny("--data.source", "files", "--data.path", str(folder), "--train.epochs", "1")
    results = json.loads((train(config, "DARTS_RNN_V2", tmp_path / "runs") / "results.json").read_text())
    assert math.isfinite(results["test"]["test_ppl"])


def test_generated_corpus_is_deterministic_and_agrees_in_number():
    first = generated_corpus({"train": 50}, 100, seed=3)
    assert first == generated_corpus({"train": 50}, 100, seed=3) != generated_corpus({"train": 50}, 100, seed=4)
    assert corpus_from_lines({**first, "valid": first["train"], "test": first["train"]}).vocab_size <= 100


def test_batchify_makes_contiguous_rows_and_refuses_short_streams():
    rows = batchify(torch.arange(11), 3)
    assert rows.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="too short for batch size 8"):
        batchify(torch.arange(10), 8)


def test_bptt_windows_cover_the_stream_and_vary_reproducibly():
    assert bptt_windows(11, 4) == [(0, 4), (4, 4), (8, 2)]
    draws = [bptt_windows(2000, 35, np.random.default_rng(seed), 55) for seed in (0, 0, 1)]
    assert draws[0] == draws[1] != draws[2]
    sizes = [size for _, size in draws[0]]
    assert all(5 <= s <= 55 for s in sizes[:-1]) and len(set(sizes)) > 5
    assert [start for start, _ in draws[0]] == list(np.cumsum([0, *sizes[:-1]]))
    assert sum(sizes) == 1999  # every position but the last one (it has no next word) is an input once


# --- the backbone ------------------------------------------------------------------------------------------
def _by_hand(cell, x, h, genotype):
    """DARTS' recurrent cell written out from the paper's equations (one time step, no dropout)."""
    hidden = h.shape[1]
    c0, h0 = torch.cat([x, h], 1).mm(cell.w0).split(hidden, 1)
    states = [h + c0.sigmoid() * (h0.tanh() - h)]
    activations = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}
    for i, (name, source) in enumerate(genotype):
        c, candidate = states[source].mm(cell.ws[i]).split(hidden, 1)
        states.append(states[source] + c.sigmoid() * (activations[name](candidate) - states[source]))
    return torch.stack(states[1:]).mean(0)


def test_the_discrete_cell_is_the_papers_cell():
    torch.manual_seed(0)
    model = RecurrentLanguageModelNetwork("DARTS_RNN_V2", 20, 6, 6).eval()
    x, h = torch.randn(3, 6), torch.randn(3, 6)
    genes = load_genotype("DARTS_RNN_V2").cells["recurrent"].genes
    outputs, last = model.cell(x.unsqueeze(1), h)
    assert torch.allclose(last, _by_hand(model.cell, x, h, genes), atol=1e-6)
    assert torch.equal(outputs[:, 0], last)


def test_a_search_node_mixes_activations_and_predecessors_and_none_adds_nothing():
    from darts.plugins import get_registry

    torch.manual_seed(0)
    primitives = get_registry().resolve("recurrent", None)
    cell = RecurrentSearchCell(4, 5, 2, primitives, batch_norm=False)
    names = [p.name for p in primitives]
    weights = torch.softmax(torch.randn(3, len(names)), -1)
    x, h = torch.randn(2, 4), torch.randn(2, 5)
    _, last = cell(x.unsqueeze(1), h, weights)
    activations = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}
    c0, h0 = torch.cat([x, h], 1).mm(cell.w0).split(5, 1)
    states, row = [h + c0.sigmoid() * (h0.tanh() - h)], 0
    for i in range(2):
        node = 0
        for j in range(i + 1):
            c, candidate = states[j].mm(cell.ws[i]).split(5, 1)
            for k, name in enumerate(names):
                if name != "none":  # DARTS skips it: it contributes zero, not (1 - c) * s
                    node = node + weights[row + j, k] * (states[j] + c.sigmoid() * (activations[name](candidate) - states[j]))
        row += i + 1
        states.append(node)
    assert torch.allclose(last, torch.stack(states[1:]).mean(0), atol=1e-6)


def test_locked_and_embedding_dropout_keep_one_mask_per_sequence():
    torch.manual_seed(0)
    out = locked_dropout(torch.ones(4, 7, 300), 0.25, training=True)
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same mask at every time step
    assert torch.allclose(out.unique(), torch.tensor([0.0, 1 / 0.75])) and abs(float((out == 0).float().mean()) - 0.25) < 0.05
    assert torch.equal(locked_dropout(torch.ones(2, 3, 4), 0.5, training=False), torch.ones(2, 3, 4))
    embedding = nn.Embedding(50, 3)
    tokens = torch.randint(0, 50, (8, 20))
    dropped = embedding_dropout(embedding, tokens, 0.5)
    zero = (dropped == 0).all(-1)
    for word in tokens.unique():  # a dropped word is dropped wherever it occurs
        assert zero[tokens == word].all() or not zero[tokens == word].any()
    kept = ~zero
    assert torch.allclose(dropped[kept], embedding(tokens)[kept] * 2)


def test_tied_weights_and_the_papers_23m_parameters():
    model = RecurrentLanguageModelNetwork("DARTS_RNN_V2", 100, 16, 16)
    assert model.decoder.weight is model.encoder.weight
    untied = RecurrentLanguageModelNetwork("DARTS_RNN_V2", 100, 16, 16, tie_weights=False)
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in model.parameters()) == 100 * 16
    with pytest.raises(ValueError, match="tied weights need embedding_dim == hidden_size, got 16 and 32"):
        RecurrentLanguageModelNetwork("DARTS_RNN_V2", 100, 16, 32)
    figures = summary(load_config("ptb-full"), "DARTS_RNN_V2")
    vocab, size = 10_000, 850  # embedding (tied decoder) + decoder bias + W0 + 8 node matrices
    assert figures["parameters"] == vocab * size + vocab + 2 * size * 2 * size + 8 * size * 2 * size == 22_960_000
    assert (figures["embedding_dim"], figures["hidden_size"]) == (850, 850)


# --- training callbacks -----------------------------------------------------------------------------------
class Spy(Callback):
    order = 50

    def __init__(self) -> None:
        self.lrs, self.hidden_in, self.hidden_out, self.epochs = [], [], [], []

    def after_loss(self, trainer) -> None:
        self.epochs.append(trainer.epoch)
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])
        self.hidden_in.append(trainer.batch[0][1])
        self.hidden_out.append(trainer.outputs.hidden)


def _trainer(callbacks, epochs=1, variable=True, lr=1.0, model=None):
    torch.manual_seed(0)
    model = model or RecurrentLanguageModelNetwork("DARTS_RNN_V2", 30, 6, 6)
    stream = torch.randint(0, 30, (400,))
    optimizer = torch.optim.SGD(model.parameters(), lr)
    return LanguageModelTrainer(model, optimizer, stream, 4, epochs, stream[:100], callbacks, bptt=10,
                                variable_bptt=variable, eval_batch_size=2)


def test_hidden_state_is_carried_detached_and_reset_each_epoch_and_lr_follows_the_window():
    spy = Spy()
    trainer = _trainer([HiddenState(), BPTTLearningRate(10), spy], epochs=2)
    trainer.fit()
    second = spy.epochs.index(1)
    for first, last in ((0, second), (second, len(spy.epochs))):
        assert torch.equal(spy.hidden_in[first], torch.zeros(4, 6))  # a fresh start each epoch
        for i in range(first + 1, last):
            assert torch.equal(spy.hidden_in[i], spy.hidden_out[i - 1]) and not spy.hidden_in[i].requires_grad
    trainer.epoch = 1
    windows = trainer.train_batches().windows  # the second epoch's, as the spy saw them
    assert len(set(size for _, size in windows)) > 1
    assert spy.lrs[second:] == pytest.approx([size / 10 for _, size in windows])
    assert trainer.optimizer.param_groups[0]["lr"] == 1.0  # restored after every step


def test_evaluation_carries_the_hidden_state_through_the_stream():
    trainer = _trainer([])
    model = trainer.model.eval()
    stream = torch.randint(0, 30, (81,))
    rows = batchify(stream, 2)
    with torch.no_grad():  # one pass over the whole rows, no windows
        logits = model(rows[:, :-1]).logits
        expected = nn.functional.cross_entropy(logits.reshape(-1, 30), rows[:, 1:].reshape(-1))
    figures = trainer.evaluate(stream, "x_", batch_size=2)
    assert figures["x_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert figures["x_ppl"] == pytest.approx(math.exp(float(expected)), rel=1e-5)


def test_ar_and_tar_are_added_to_the_training_loss_only():
    class Raw(Callback):
        order = -5

        def after_loss(self, trainer):
            self.raw_loss = float(trainer.loss.detach())
            self.out = trainer.outputs

    class After(Callback):
        order = 5

        def after_loss(self, trainer):
            self.loss = float(trainer.loss.detach())

    raw, after = Raw(), After()
    model = RecurrentLanguageModelNetwork("DARTS_RNN_V2", 30, 6, 6, dropout_output=0.5)
    trainer = _trainer([HiddenState(), raw, ActivationRegularization(2.0, 3.0), after], model=model)
    trainer.epochs = 1
    trainer.train_batches = lambda: [(torch.randint(0, 30, (4, 8)), torch.randint(0, 30, (4, 8)))]
    trainer.fit()
    out = raw.out
    out = type(out)(*(t.detach() for t in out))
    expected = raw.raw_loss + 2.0 * float(out.dropped.pow(2).mean()) + 3.0 * float(
        (out.raw[:, 1:] - out.raw[:, :-1]).pow(2).mean())
    assert after.loss == pytest.approx(expected, rel=1e-6)
    assert trainer.history[-1]["train_loss"] == pytest.approx(raw.raw_loss, rel=1e-6)  # reported without them


def test_nt_asgd_switches_on_the_non_monotone_rule():
    callback = AveragedSGD(nonmono=2)

    class Fake:
        epoch, epoch_metrics = 0, {}

    for loss in (5.0, 4.0, 3.0, 3.5, 3.2):  # 3.2 > min(5, 4, 3)? no; 3.5 > min(5, 4)? no
        Fake.epoch += 1
        Fake.epoch_metrics = {"val_loss": loss}
        callback.after_epoch(Fake)
    assert not callback.switched
    Fake.epoch_metrics = {"val_loss": 3.05}  # worse than 3.0, the best before the last 2
    Fake.epoch += 1
    callback.after_epoch(Fake)
    assert callback.switched and callback.switched_at == 6


def test_averaged_weights_match_torch_asgd():
    """With SGD without momentum, the averaging callback is torch's ASGD (t0=0, lambda=0), whose average
    leaves out the first step's weights: n * ours = w_1 + (n - 1) * ax."""
    torch.manual_seed(0)
    ours = nn.Linear(3, 2)
    reference = nn.Linear(3, 2)
    reference.load_state_dict(ours.state_dict())
    sgd = torch.optim.SGD(ours.parameters(), 0.1, weight_decay=0.01)
    asgd = torch.optim.ASGD(reference.parameters(), 0.1, lambd=0.0, t0=0, weight_decay=0.01)
    callback = AveragedSGD()
    callback.switched_at = 0

    class Fake:
        model = ours

    first = None
    for step in range(6):
        x = torch.randn(5, 3)
        for model, optimizer in ((ours, sgd), (reference, asgd)):
            optimizer.zero_grad()
            model(x).pow(2).sum().backward()
            optimizer.step()
        callback.after_step(Fake)
        first = first or [p.detach().clone() for p in ours.parameters()]
        assert all(torch.allclose(a, b) for a, b in zip(ours.parameters(), reference.parameters()))
    n = callback.count
    for mean, w1, p in zip(callback.average, first, reference.parameters()):
        assert torch.allclose(n * mean, w1 + (n - 1) * asgd.state[p]["ax"], atol=1e-6)


# --- runs end to end --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_search_train_evaluate_report_perplexity(tmp_path):
    config = tiny("--lm.nonmono", "1")
    run = search(config, tmp_path)
    metrics = pd.read_csv(run / "metrics.csv")
    assert {"train_ppl", "val_ppl", "arch_val_loss"} <= set(metrics.columns) and len(metrics) == 2
    assert np.allclose(metrics["val_ppl"], np.exp(metrics["val_loss"]), rtol=1e-4)
    genotype = load_genotype(run / "genotype.json")
    assert genotype.family == "recurrent" and len(genotype.cells["recurrent"].nodes) == 3
    trained = train(config.model_copy(update={"train": config.train.model_copy(update={"epochs": 8})}),
                    run / "genotype.json", tmp_path)
    results = json.loads((trained / "results.json").read_text())
    vocabulary = len(json.loads((trained / "vocabulary.json").read_text())["words"])
    network = RecurrentLanguageModelNetwork(genotype, vocabulary, 12, 12)  # train.model's sizes
    assert results["parameters"]["model"] == sum(p.numel() for p in network.parameters())
    assert results["test"]["test_ppl"] < results["baseline"]["unigram_ppl"]
    assert evaluate(trained)["test_ppl"] == pytest.approx(results["test"]["test_ppl"], rel=1e-6)
    assert math.isfinite(evaluate(run)["test_ppl"])
    log = (trained / "log.txt").read_text()
    assert "val_ppl" in log and "test: loss " in log and " ppl " in log  # the result line


class PoisonLoss(Callback):
    order = -1

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_loss(self, trainer) -> None:
        if trainer.epoch + 1 == self.epoch and trainer.batch_index == 0:
            trainer.loss = trainer.loss * float("nan")


@pytest.mark.slow
def test_a_stopped_search_resumes_to_the_uninterrupted_result_alpha_optimiser_included(tmp_path):
    config = tiny("--search.epochs", "2", "--search.warmup_epochs", "0")
    reference = search(config, tmp_path / "reference")
    with pytest.raises(RunError, match="epoch 2, step 1"):
        search(config, tmp_path / "stopped", callbacks=[PoisonLoss(epoch=2)])
    (run,) = (tmp_path / "stopped").iterdir()
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["callbacks"]["LanguageModelArchitectureStep"]["optimizer"]["state"]  # Adam's moments
    search(resume=run)
    for name in ("genotype.json", "genotypes.jsonl", "alphas.jsonl"):
        assert (run / name).read_text() == (reference / name).read_text(), name
    pd.testing.assert_frame_equal(pd.read_csv(run / "metrics.csv").drop(columns=list(TIMING)),
                                  pd.read_csv(reference / "metrics.csv").drop(columns=list(TIMING)))


@pytest.mark.slow
def test_training_switches_to_averaged_weights_and_resumes_exactly(tmp_path):
    config = tiny("--train.epochs", "6", "--lm.nonmono", "1", "--train.lr", "60")
    reference = train(config, "DARTS_RNN_V2", tmp_path / "reference")
    metrics = pd.read_csv(reference / "metrics.csv")
    averaged = metrics.loc[metrics["averaged"] == 1.0, "epoch"].tolist()  # validated with averaged weights
    assert averaged and averaged == list(range(averaged[0], 7)) and averaged[0] < 6, metrics
    assert "switching to averaged SGD" in (reference / "log.txt").read_text()
    stop = averaged[0] + 1  # the checkpoint before it holds an average of some steps
    with pytest.raises(RunError, match=f"epoch {stop}, step 1"):
        train(config, "DARTS_RNN_V2", tmp_path / "stopped", callbacks=[PoisonLoss(epoch=stop)])
    (run,) = (tmp_path / "stopped").iterdir()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["callbacks"]["AveragedSGD"]["average"]
    train(resume=run)
    ours, theirs = (json.loads((d / "results.json").read_text()) for d in (run, reference))
    assert ours["test"] == theirs["test"]
    assert torch.load(run / "model.pt")["encoder.weight"].equal(torch.load(reference / "model.pt")["encoder.weight"])


@pytest.mark.slow
def test_config_errors_for_language_models(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'train.model.hiden_size'; did you mean 'train.model.hidden_size'"):
        load_config("ptb-quick", ["--train.model", "{hiden_size: 3}"])
    with pytest.raises(ValueError, match="a language model needs a recurrent family"):
        search(load_config("ptb-quick", ["--model.family", "conv1d"]), tmp_path)
    with pytest.raises(ValueError, match="tied weights need embedding_dim == hidden_size"):
        search(load_config("ptb-quick", ["--model.hidden_size", "16"]), tmp_path)
    with pytest.raises(ValueError, match="search.reuse_gradient does not apply to language models"):
        search(load_config("ptb-quick", ["--search.reuse_gradient", "true"]), tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_user_activation_is_searched_in_a_language_model():
    import darts
    from darts.plugins import isolated_plugins

    with isolated_plugins() as manager:
        darts.register_primitive("recurrent", "softsign")(lambda channels, stride=1: nn.Softsign())
        model = RecurrentLanguageModelSearch(20, 4, 4, nodes=2, primitives=["none", "tanh", "softsign"],
                                             registry=manager.registry)
        with torch.no_grad():
            model.alphas["recurrent"][:, 2] = 5.0
        assert model(torch.randint(0, 20, (2, 5))).logits.shape == (2, 5, 20)
        genotype = model.genotype()
    assert genotype.primitives == ("none", "tanh", "softsign")
    assert {name for name, _ in genotype.cells["recurrent"].genes} == {"softsign"}
