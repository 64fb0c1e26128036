"""Genotypes: derivation on hand-computed cases, the JSON file format, validation errors, discrete networks."""

from __future__ import annotations

import json

import pytest
import torch

from darts import (Genotype, GenotypeError, Network, RecurrentNetwork, RecurrentSearchNetwork, SearchNetwork,
                   derive_cell, get_registry, load_genotype)


def test_derive_cell_hand_computed():
    primitives = ("none", "conv", "pool")
    weights = torch.tensor([
        # node 0 (state 2): inputs 0, 1
        [0.90, 0.05, 0.05],   # edge 0: strongest non-none is conv (0.05 = pool, first wins ties)
        [0.10, 0.20, 0.70],   # edge 1: pool
        # node 1 (state 3): inputs 0, 1, 2
        [0.00, 0.30, 0.70],   # edge 0: strength 0.70 (pool)
        [0.95, 0.04, 0.01],   # edge 1: strength 0.04, a strong 'none' does not count
        [0.20, 0.60, 0.20],   # edge 2: strength 0.60 (conv)
    ])
    cell = derive_cell(weights, primitives, inputs=2, k=2, concat=(2, 3))
    assert cell.nodes == ((("pool", 1), ("conv", 0)), (("pool", 0), ("conv", 2)))
    assert derive_cell(weights, primitives, inputs=2, k=1, concat=(2, 3)).nodes == ((("pool", 1),), (("pool", 0),))


def test_derive_recurrent_cell_hand_computed():
    primitives = ("none", "tanh", "relu")
    weights = torch.tensor([[0.1, 0.8, 0.1],                      # state 1 from state 0
                            [0.9, 0.05, 0.05], [0.2, 0.2, 0.6]])  # state 2 from state 0 or 1
    cell = derive_cell(weights, primitives, inputs=1, k=1, concat=(1, 2))
    assert cell.nodes == ((("tanh", 0),), (("relu", 1),))


def test_search_network_genotype_follows_its_alphas():
    network = SearchNetwork("conv1d", in_channels=2, channels=4, num_classes=2, layers=3, nodes=2)
    names = network.primitive_names
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.zero_()
        # normal cell: state 2 <- sep_conv_3 from input 1 and skip from input 0; state 3 <- dil_conv_5 from state 2
        normal = network.alphas["normal"]
        normal[0, names.index("skip_connect")] = 3
        normal[1, names.index("sep_conv_3")] = 4
        normal[4, names.index("dil_conv_5")] = 5
        normal[2, names.index("max_pool_3")] = 2
    genotype = network.genotype()
    assert genotype.family == "conv1d" and genotype.primitives == names
    assert genotype.cells["normal"].nodes == ((("sep_conv_3", 1), ("skip_connect", 0)),
                                              (("dil_conv_5", 2), ("max_pool_3", 0)))
    assert genotype.cells["normal"].concat == (2, 3)
    assert Network(genotype, in_channels=2, channels=4, num_classes=2, layers=3)(torch.randn(2, 2, 9)).shape == (2, 2)


def test_round_trip_through_a_file(tmp_path):
    network = SearchNetwork("linear", in_channels=5, channels=4, num_classes=2, layers=3, nodes=3)
    genotype = network.genotype()
    path = genotype.save(tmp_path / "genotype.json")
    assert load_genotype(path) == genotype
    assert json.loads(path.read_text())["format"] == "darts-genotype"
    with pytest.raises(FileExistsError):
        genotype.save(path)
    genotype.save(path, overwrite=True)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_published_genotypes_load_by_name():
    v2 = load_genotype("DARTS_V2")
    assert v2.family == "conv2d"
    assert v2.cells["normal"].genes[:2] == [("sep_conv_3", 0), ("sep_conv_3", 1)]   # paper names canonicalised
    assert v2.cells["reduce"].genes[-1] == ("max_pool_3", 1)
    assert load_genotype("DARTS_V1").cells["reduce"].genes[-1] == ("avg_pool_3", 0)
    rnn = load_genotype("DARTS_RNN_V2")
    assert rnn.cells["recurrent"].genes == [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1),
                                            ("tanh", 2), ("sigmoid", 5), ("tanh", 3), ("relu", 5)]
    assert rnn.cells["recurrent"].concat == tuple(range(1, 9))
    assert load_genotype("recurrent:DARTS_V1") == load_genotype("DARTS_RNN_V1")


def test_darts_v2_cifar_network_has_the_published_parameter_count():
    # DARTS' train.py logs "param size = 3.349342MB" for DARTS_V2, C=36, 20 cells, auxiliary head excluded
    network = Network("DARTS_V2", in_channels=3, channels=36, num_classes=10, layers=20)
    assert sum(p.numel() for p in network.parameters()) == 3_349_342


def test_published_cells_run_in_other_dimensions():
    conv1d = Network(load_genotype("DARTS_V2").with_family("conv1d"), in_channels=4, channels=8, num_classes=3,
                     layers=5)
    assert conv1d(torch.randn(2, 4, 33)).shape == (2, 3)
    conv2d = Network("DARTS_V1", in_channels=3, channels=4, num_classes=10, layers=3)
    assert conv2d(torch.randn(2, 3, 9, 9)).shape == (2, 10)
    rnn = RecurrentNetwork("DARTS_RNN_V2", vocab_size=20, embedding_dim=8, hidden_size=8, num_classes=2)
    assert rnn(torch.randint(0, 20, (3, 5))).shape == (3, 2)


def test_recurrent_search_network_derives_a_recurrent_genotype():
    network = RecurrentSearchNetwork(vocab_size=10, embedding_dim=4, hidden_size=4, num_classes=2, nodes=4)
    genotype = network.genotype()
    assert list(genotype.cells) == ["recurrent"] and len(genotype.cells["recurrent"].nodes) == 4
    assert all(len(node) == 1 and node[0][0] != "none" for node in genotype.cells["recurrent"].nodes)
    assert RecurrentNetwork(genotype, 10, 4, 4, 2)(torch.randint(0, 10, (2, 3))).shape == (2, 2)


def _valid() -> dict:
    return load_genotype("DARTS_V2").to_dict()


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["cells"]["normal"].pop("concat"), "cells.normal.concat", "is missing"),
    (lambda d: d.pop("family"), "family", "is missing"),
    (lambda d: d["cells"].pop("reduce"), "cells.reduce", "is missing"),
    (lambda d: d.update(family="conv3d"), "family", "did you mean"),
    (lambda d: d.update(version=99), "version", "reads versions 1 to 1"),
    (lambda d: d.update(format="something"), "format", "expected 'darts-genotype'"),
    (lambda d: d["cells"]["normal"]["nodes"][1].__setitem__(0, ["sep_conv_33", 0]), "cells.normal.nodes[1][0]",
     "did you mean 'sep_conv_3'"),
    (lambda d: d["cells"]["normal"]["nodes"][2].__setitem__(1, ["sep_conv_3", 4]), "cells.normal.nodes[2][1]",
     "input index 4; node 2 may take inputs 0..3"),
    (lambda d: d["cells"]["normal"]["nodes"][0].__setitem__(0, ["sep_conv_3"]), "cells.normal.nodes[0][0]",
     "expected [primitive, input index]"),
    (lambda d: d["cells"]["normal"]["concat"].append(6), "cells.normal.concat[4]", "states are numbered 0..5"),
    (lambda d: d.update(primitives=["none", "skip_connect"]), "cells.normal.nodes[0][0]",
     "not in the recorded primitive set"),
    (lambda d: d["cells"]["normal"].update(inputs=1), "cells.normal.inputs", "feedforward cells have 2"),
])
def test_invalid_files_name_the_field(tmp_path, mutate, field, words):
    data = _valid()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GenotypeError) as error:
        load_genotype(path)
    message = str(error.value)
    assert str(path) in message and f"'{field}'" in message and words in message, message


def test_not_json_and_unknown_name(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_genotype(path)
    with pytest.raises(GenotypeError, match="did you mean 'DARTS_V2'"):
        load_genotype("DARTS_V3")


def test_from_darts_tuple_layout():
    genotype = Genotype.from_darts("conv2d", ["skip_connect", "max_pool_3x3"],
                                   normal=[("skip_connect", 0), ("skip_connect", 1)], normal_concat=[2],
                                   reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)], reduce_concat=[2])
    validated = genotype.validate(get_registry())
    assert validated.cells["reduce"].nodes == ((("max_pool_3", 0), ("max_pool_3", 1)),)
    assert "state 2 = max_pool_3(state 0) + max_pool_3(state 1)" in str(validated)
