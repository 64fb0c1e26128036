"""A word-level language model around a DARTS recurrent cell: the AWD-LSTM backbone DARTS searched on.

Token ids (batch, time) -> embedding with embedding dropout (whole words dropped) -> locked dropout ->
recurrent cell (variational dropout on its input and hidden states) -> locked dropout -> decoder, whose
weight is the embedding's when tied (Merity et al. 2017; Liu et al. 2019, section 3.1.2).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from darts.family import Family
from darts.genotype import Genotype
from darts.registry import Registry
from darts.search_space.recurrent import (RecurrentCell, RecurrentSupernet, discrete_cell, search_cell,
                                          variational_mask)


class LanguageModelOutput(NamedTuple):
    """What a language model returns: next-token ``logits`` (batch, time, vocab), the last ``hidden`` state
    (batch, hidden), the cell's ``raw`` outputs (batch, time, hidden) and the ``dropped`` ones fed to the
    decoder, for activation (AR) and temporal activation (TAR) regularisation."""

    logits: torch.Tensor
    hidden: torch.Tensor
    raw: torch.Tensor
    dropped: torch.Tensor


def embedding_dropout(embedding: nn.Embedding, tokens: torch.Tensor, p: float) -> torch.Tensor:
    """Look ``tokens`` up with whole rows of the embedding dropped with probability ``p`` (a dropped word is
    zero wherever it occurs in the batch), the rest scaled by 1 / (1 - p)."""
    weight = embedding.weight
    if p > 0:
        weight = weight * variational_mask(weight[:, :1], p)
    return F.embedding(tokens, weight, embedding.padding_idx)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout of (batch, time, features) with one mask per sequence, the same at every time step."""
    if not training or p <= 0:
        return x
    return x * variational_mask(x[:, :1], p)


class RecurrentLanguageModel(nn.Module):
    """The language model of a recurrent cell; ``forward(tokens, hidden)`` returns a :class:`LanguageModelOutput`.

    Dropouts (DARTS' names in brackets): ``dropout_words`` drops words from the embedding [dropoute],
    ``dropout_embedding`` is locked dropout on the embedded sequence [dropouti], the cell's own
    ``dropout_input`` [dropoutx] and ``dropout_hidden`` [dropouth], and ``dropout_output`` locked dropout
    before the decoder [dropout]. ``tie_weights`` shares the embedding with the decoder (needs
    embedding_dim == hidden_size).
    """

    def __init__(self, cell: RecurrentCell, vocab_size: int, embedding_dim: int, dropout_output: float = 0.0,
                 dropout_embedding: float = 0.0, dropout_words: float = 0.0, tie_weights: bool = True) -> None:
        super().__init__()
        for name, p in (("dropout_output", dropout_output), ("dropout_embedding", dropout_embedding),
                        ("dropout_words", dropout_words)):
            if not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if tie_weights and embedding_dim != cell.hidden_size:
            raise ValueError(f"tied weights need embedding_dim == hidden_size, got {embedding_dim} and "
                             f"{cell.hidden_size}; make them equal or set tie_weights false")
        self.vocab_size = vocab_size
        self.dropout_output, self.dropout_embedding, self.dropout_words = dropout_output, dropout_embedding, dropout_words
        self.encoder = nn.Embedding(vocab_size, embedding_dim)
        self.cell = cell
        self.decoder = nn.Linear(cell.hidden_size, vocab_size)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        """The hidden state a sequence starts from: zeros (batch, hidden)."""
        return self.decoder.bias.new_zeros(batch_size, self.hidden_size)

    def cell_weights(self) -> torch.Tensor | None:
        return None

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> LanguageModelOutput:
        embedded = embedding_dropout(self.encoder, tokens, self.dropout_words if self.training else 0.0)
        embedded = locked_dropout(embedded, self.dropout_embedding, self.training)
        raw, last = self.cell(embedded, hidden, self.cell_weights())
        dropped = locked_dropout(raw, self.dropout_output, self.training)
        return LanguageModelOutput(self.decoder(dropped), last, raw, dropped)


class RecurrentLanguageModelSearch(RecurrentSupernet, RecurrentLanguageModel):
    """The search supernet of DARTS' recurrent cell on the language model (alphas apart from the weights)."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, nodes: int = 8,
                 family: str | Family = "recurrent", primitives: Sequence[str] | None = None,
                 registry: Registry | None = None, dropout_input: float = 0.0, dropout_hidden: float = 0.0,
                 **dropouts) -> None:
        fam, cell = search_cell(embedding_dim, hidden_size, nodes, family, primitives, registry,
                                dropout_input, dropout_hidden)
        super().__init__(cell, vocab_size, embedding_dim, **dropouts)
        self._init_alphas(fam, nodes)


class RecurrentLanguageModelNetwork(RecurrentLanguageModel):
    """The language model of a discrete recurrent genotype (e.g. ``DARTS_RNN_V2``)."""

    def __init__(self, genotype: Genotype | str, vocab_size: int, embedding_dim: int, hidden_size: int,
                 registry: Registry | None = None, dropout_input: float = 0.0, dropout_hidden: float = 0.0,
                 **dropouts) -> None:
        genotype, cell = discrete_cell(genotype, embedding_dim, hidden_size, registry, dropout_input, dropout_hidden)
        super().__init__(cell, vocab_size, embedding_dim, **dropouts)
        self.genotype = genotype
