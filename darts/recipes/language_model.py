"""The recipe of token streams to model (:class:`darts.tasks.language.CorpusData`): DARTS' recurrent search.

The cell sits in the AWD-LSTM backbone. A search trains the weights on ``train.txt`` and takes each alpha step
on the window of ``valid.txt`` at the same position (DARTS' ``train_search.py``); a training validates on
``valid.txt`` with NT-ASGD and tests its best weights (DARTS' ``train.py``); results are read against the
perplexity of the training words' frequencies.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from darts import distributed
from darts.plugins import get_registry
from darts.recipes import Recipe
from darts.search_space.awd_lstm import RecurrentLanguageModelNetwork, RecurrentLanguageModelSearch
from darts.training.language_model import (ActivationRegularization, AveragedSGD, BPTTLearningRate, HiddenState,
                                           KeepBest, LanguageModelArchitectureStep, LanguageModelLoss,
                                           LanguageModelTrainer)
from darts.training.trainer import Callback


def _single_process(what: str) -> None:
    if distributed.active():
        raise ValueError(f"{what} runs in one process; start it without torchrun")


def _language_model_options(model) -> dict:
    return {"dropout_input": model.dropout_input, "dropout_hidden": model.dropout_hidden,
            "dropout_output": model.dropout_output, "dropout_embedding": model.dropout_embedding,
            "dropout_words": model.dropout_words, "tie_weights": model.tie_weights}


def language_model_callbacks(lm) -> list[Callback]:
    """Hidden state carried between windows, the learning rate scaled to each window, AR and TAR."""
    callbacks: list[Callback] = [HiddenState(), ActivationRegularization(lm.ar, lm.tar)]
    if lm.variable_bptt:
        callbacks.append(BPTTLearningRate(lm.bptt))
    return callbacks


class LanguageModelRecipe(Recipe):
    """Next-word prediction on three token streams (train, valid, test) with a recurrent DARTS cell."""

    # --- networks ------------------------------------------------------------------------------------------
    def check_family(self, family, what: str) -> None:
        """A language model needs a recurrent family."""
        if family.cell != "recurrent":
            recurrent = [f for f in get_registry().family_names if get_registry().family(f).cell == "recurrent"]
            raise ValueError(f"{what} {family.name!r} has {family.cell} cells; a language model needs a recurrent "
                             f"family ({', '.join(recurrent)})")

    def search_network(self, model, options: dict) -> nn.Module:
        """The AWD-LSTM backbone around a recurrent supernet cell."""
        return RecurrentLanguageModelSearch(self.data.vocab_size, model.embedding_dim, model.hidden_size,
                                            model.nodes, model.family, model.primitives,
                                            **_language_model_options(model))

    def network(self, genotype, model, channels, layers, auxiliary, imagenet_stem, auxiliary_head) -> nn.Module:
        """The AWD-LSTM backbone around the genotype's cell (widths and depth come from ``model``)."""
        return RecurrentLanguageModelNetwork(genotype, self.data.vocab_size, model.embedding_dim, model.hidden_size,
                                             **_language_model_options(model))

    # --- search and training -------------------------------------------------------------------------------
    def check_search(self, search, selector) -> None:
        """Selection that scores the supernet, and a reused training gradient, do not apply here."""
        if selector.supernet_scoring:
            raise ValueError(f"search.selection {selector.name} scores the supernet of a classifier or regressor; a "
                             "language model's search selects by alpha: set search.selection alpha")
        if search.reuse_gradient:
            raise ValueError("search.reuse_gradient does not apply to language models: their weight step adds AR "
                             "and TAR to the loss; set it false")

    def loss(self, config, label_smoothing: float = 0.0) -> LanguageModelLoss:
        """Cross-entropy of the next word."""
        return LanguageModelLoss()

    def search_trainer(self, context, network, optimizer, architecture, callbacks):
        """Weights on ``train.txt`` in BPTT windows; each alpha step on ``valid.txt``'s window at the same place."""
        _single_process("a language-model search")
        config, s, lm, data = context.config, context.config.search, context.config.lm, self.data
        step = LanguageModelArchitectureStep(architecture, data.valid, s.batch_size, s.warmup_epochs, s.loss_limit)
        trainer = LanguageModelTrainer(
            network, optimizer, data.train, s.batch_size, s.epochs, data.valid,
            [step, *language_model_callbacks(lm), *callbacks], config.seed, s.monitor, lm.bptt, lm.max_bptt,
            lm.variable_bptt, lm.eval_batch_size, batch_norm_statistics="batch", precision=context.precision)
        return trainer, f"{len(data.train):,} tokens for the weights, {len(data.valid):,} for the alphas", None

    def train_trainer(self, context, model, optimizer, common: Sequence[Callback], extra: Sequence[Callback]):
        """AWD-LSTM's recipe: ``valid.txt`` validates, NT-ASGD averages the weights, the best model is kept."""
        _single_process("language-model training")
        config, t, lm, data = context.config, context.config.train, context.config.lm, self.data
        recipe: list[Callback] = [*language_model_callbacks(lm), KeepBest()]
        if lm.averaging:
            recipe.append(AveragedSGD(lm.nonmono, context.log))
        trainer = LanguageModelTrainer(model, optimizer, data.train, t.batch_size, t.epochs, data.valid,
                                       [*common, *recipe, *extra], config.seed, t.monitor, lm.bptt,
                                       lm.max_bptt, lm.variable_bptt, lm.eval_batch_size, precision=context.precision)
        return trainer, f"{len(data.train):,} training tokens"

    # --- results -------------------------------------------------------------------------------------------
    def test(self, trainer, config) -> dict[str, float]:
        """Loss and perplexity on ``test.txt``, the hidden state carried through, ``lm.test_batch_size`` rows."""
        return trainer.evaluate(self.data.test, "test_", batch_size=config.lm.test_batch_size)

    def evaluate(self, model, config, batch_size: int, statistics: str, precision) -> dict[str, float]:
        """The test perplexity of ``model`` as it is."""
        data = self.data
        frozen = torch.optim.SGD(model.parameters(), 0.0)
        trainer = LanguageModelTrainer(model, frozen, data.train, batch_size, 0, bptt=config.lm.bptt,
                                       batch_norm_statistics=statistics, precision=precision)
        # a supernet normalises with batch statistics, which need more than one row
        rows = config.lm.test_batch_size if statistics == "running" else config.lm.eval_batch_size
        return trainer.evaluate(data.test, "test_", batch_size=rows)

    def baseline(self) -> dict[str, float]:
        """The perplexity of the training words' frequencies (add-one smoothed) on the test stream."""
        counts = torch.bincount(self.data.train, minlength=self.data.vocab_size).double() + 1
        log_p = (counts / counts.sum()).log()
        return {"unigram_ppl": float(torch.exp(-log_p[self.data.test].mean()))}

    def check_export(self) -> None:
        """Language models are not exported."""
        raise ValueError("language models are not exported: their forward pass carries a hidden state from window "
                         "to window; export is for classifiers and regressors")
