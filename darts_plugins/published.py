"""The genotypes published with DARTS (Liu, Simonyan and Yang, ICLR 2019), loadable by name.

``DARTS_V1`` and ``DARTS_V2`` are the CIFAR-10 convolutional cells (first and second order search);
``DARTS_RNN_V1`` and ``DARTS_RNN_V2`` the Penn Treebank recurrent cells. ``conv2d:``/``recurrent:``
prefixed names are accepted too, for symmetry.
"""

from __future__ import annotations

from darts.genotype import Genotype

RNN_PRIMITIVES = ("none", "tanh", "relu", "sigmoid", "identity")
PAPER_CNN_PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def cnn_genotypes() -> dict[str, Genotype]:
    v1 = Genotype.from_darts(
        "conv2d", PAPER_CNN_PRIMITIVES,
        normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
        reduce_concat=[2, 3, 4, 5])
    v2 = Genotype.from_darts(
        "conv2d", PAPER_CNN_PRIMITIVES,
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
        reduce_concat=[2, 3, 4, 5])
    return {"DARTS_V1": v1, "DARTS_V2": v2, "conv2d:DARTS_V1": v1, "conv2d:DARTS_V2": v2}


def rnn_genotypes() -> dict[str, Genotype]:
    v1 = Genotype.from_darts(
        "recurrent", RNN_PRIMITIVES,
        recurrent=[("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1),
                   ("relu", 5), ("relu", 1)],
        concat=range(1, 9))
    v2 = Genotype.from_darts(
        "recurrent", RNN_PRIMITIVES,
        recurrent=[("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                   ("tanh", 3), ("relu", 5)],
        concat=range(1, 9))
    return {"DARTS_RNN_V1": v1, "DARTS_RNN_V2": v2, "recurrent:DARTS_V1": v1, "recurrent:DARTS_V2": v2}


__all__ = ["cnn_genotypes", "rnn_genotypes"]
