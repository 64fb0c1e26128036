"""The DARTS convolutional setting: evaluation networks against the paper's figures, training tricks against
hand computations, loaders for CIFAR batches, image folders and .npz arrays, augmentation, and 1D."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from darts import Network, SearchNetwork, load_genotype
from darts.config import load_config
from darts.data import DataFileError, motif_sequences
from darts.data.augment import Cutout, Normalize, RandomCrop, RandomFlip
from darts.data.images import ImageFolder, load_arrays, load_cifar
from darts.assemble import count_parameters
from darts.search_space.cell import drop_path
from darts.tasks import Target
from darts.training import AuxiliaryLoss, DropPathSchedule, TaskLoss, Trainer
from darts.workflows import search, summary, train


# --- the paper's figures ----------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, parameters", [
    ("cifar10-full", 3_349_342),    # DARTS train.py: "param size = 3.349342MB" (the paper's 3.3M)
    ("imagenet-full", 4_718_752),   # DARTS train_imagenet.py: "param size = 4.718752MB" (the paper's 4.7M)
])
def test_summary_gives_the_published_sizes_of_darts_v2(preset, parameters):
    figures = summary(load_config(preset), "DARTS_V2")
    assert figures["parameters"] == parameters and figures["auxiliary_parameters"] > 0
    assert figures["multiply_adds"] > 500e6


def darts_auxiliary_parameters(channels: int, hidden: int, out: int, classes: int, kernel: int) -> int:
    """By hand: 1x1 conv, BN, conv of width 2 (kernel = 2 ** spatial dims weights per pair), BN, linear head."""
    return channels * hidden + 2 * hidden + hidden * out * kernel + 2 * out + out * classes + classes


def test_the_paper_presets_keep_darts_auxiliary_head():
    # DARTS' CIFAR head on C=36, 20 cells: 576 channels at 2/3 of the depth, 128 then 768 channels
    figures = summary(load_config("cifar10-full"), "DARTS_V2")
    assert figures["auxiliary_parameters"] == darts_auxiliary_parameters(576, 128, 768, 10, 4) == 476_426


def test_the_auxiliary_head_is_sized_from_the_channels_it_reads():
    from darts.search_space.network import scaled_auxiliary

    assert scaled_auxiliary(576) == (128, 768)  # DARTS' proportions give its own head at its own width
    genotype = load_genotype("DARTS_V2").with_family("conv1d")
    scaled = Network(genotype, 1, 16, 2, layers=8, auxiliary=True, auxiliary_widths=scaled_auxiliary)
    darts = Network(genotype, 1, 16, 2, layers=8, auxiliary=True)
    assert scaled.auxiliary_head.features[0].in_channels == 256  # 4 nodes x 64 channels after two reductions
    assert count_parameters(scaled)["auxiliary"] == darts_auxiliary_parameters(256, 57, 341, 2, 2) == 54_946
    assert count_parameters(darts)["auxiliary"] == darts_auxiliary_parameters(256, 128, 768, 2, 2) == 232_706
    assert count_parameters(scaled)["model"] == count_parameters(darts)["model"] == 228_114
    scaled.train()
    scaled(torch.randn(3, 1, 150))
    assert scaled.auxiliary_output.shape == (3, 2)


def test_the_search_supernet_has_the_published_size():
    # DARTS train_search.py (C=16, 8 cells, 10 classes) logs "param size = 1.930618MB"
    assert summary(load_config("cifar10-full"))["parameters"] == 1_930_618


def test_the_imagenet_stem_reduces_by_eight_and_the_auxiliary_head_runs_in_training_only():
    network = Network("DARTS_V2", 3, 8, 7, layers=5, auxiliary=True, imagenet_stem=True)
    s0 = network.stem(torch.randn(2, 3, 64, 64))
    assert s0.shape[2:] == (16, 16) and network.stem1(s0).shape[2:] == (8, 8)
    network.train()
    assert network(torch.randn(2, 3, 64, 64)).shape == (2, 7) and network.auxiliary_output.shape == (2, 7)
    network.eval()
    network(torch.randn(2, 3, 64, 64))
    assert network.auxiliary_output is None
    assert count_parameters(network)["auxiliary"] == sum(p.numel() for p in network.auxiliary_head.parameters())


def test_the_auxiliary_loss_adds_its_weighted_term():
    torch.manual_seed(0)
    network = Network("DARTS_V2", 3, 4, 3, layers=3, auxiliary=True)
    data = torch.utils.data.TensorDataset(torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,)))
    seen = []

    class Spy(AuxiliaryLoss):
        def after_loss(self, trainer):
            main = float(trainer.loss.detach())
            super().after_loss(trainer)
            seen.append((main, float(F.cross_entropy(trainer.model.auxiliary_output.detach(), trainer.batch[1])),
                         float(trainer.loss.detach())))

    Trainer(network, torch.optim.SGD(network.parameters(), 0.0), TaskLoss((Target("y", classes=3),), False), data, 4,
            1, callbacks=[Spy(0.4)]).fit()
    assert seen and all(total == pytest.approx(main + 0.4 * aux, rel=1e-6) for main, aux, total in seen)


def test_drop_path_is_ramped_per_epoch_and_keeps_the_expectation():
    network = Network("DARTS_V2", 3, 4, 3, layers=3)
    data = torch.utils.data.TensorDataset(torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,)))
    probabilities = []

    class Record(DropPathSchedule):
        def before_epoch(self, trainer):
            super().before_epoch(trainer)
            probabilities.append(trainer.model.drop_path_prob)

    Trainer(network, torch.optim.SGD(network.parameters(), 0.0), TaskLoss((Target("y", classes=3),), False), data, 4,
            5, callbacks=[Record(0.2)]).fit()
    assert probabilities == pytest.approx([0.2 * e / 5 for e in range(5)])
    torch.manual_seed(0)
    x = torch.ones(20000, 3)
    dropped = drop_path(x, 0.3)
    kept = dropped[:, 0] != 0
    assert abs(kept.float().mean() - 0.7) < 0.02 and torch.allclose(dropped[kept], torch.full_like(dropped[kept], 1 / 0.7))
    assert (dropped == dropped[:, :1]).all()  # whole examples are dropped, not single values


def test_label_smoothing_matches_the_formula():
    logits, labels = torch.randn(6, 4), torch.randint(0, 4, (6,))
    loss = TaskLoss((Target("y", classes=4),), False, label_smoothing=0.1)(logits, labels)
    log_p = F.log_softmax(logits, -1)
    expected = (0.9 * -log_p[torch.arange(6), labels] + 0.1 * -log_p.mean(-1)).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


def test_separate_alphas_per_cell_give_one_cell_genotype_per_layer():
    network = SearchNetwork("conv2d", 3, 4, 10, layers=4, nodes=2, alphas="per_cell")
    assert sorted(network.alphas) == ["cell_0", "cell_1", "cell_2", "cell_3"]
    with torch.no_grad():
        network.alphas["cell_1"][:, network.primitive_names.index("sep_conv_5")] += 5
    genotype = load_genotype(network.genotype())
    assert {name for name, _ in genotype.cells["cell_1"].genes} == {"sep_conv_5"}
    assert Network(genotype, 3, 4, 10, layers=4)(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="one cell per layer for 4 layers; the network has 6"):
        Network(genotype, 3, 4, 10, layers=6)


# --- data on disk ------------------------------------------------------------------------------------------
def write_cifar10(folder, per_batch=4):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, per_batch).tolist()}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, handle)


def test_cifar10_and_cifar100_python_batches(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    x_train, y_train, x_test, y_test, names = load_cifar(tmp_path / "cifar-10-batches-py")
    assert x_train.shape == (20, 3, 32, 32) and x_test.shape == (4, 3, 32, 32) and names[3] == "class3"
    raw = pickle.load(open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb"), encoding="bytes")
    assert (x_train[0, 1].ravel() == raw[b"data"][0, 1024:2048]).all()  # channel planes in the CIFAR layout
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 6), ("test", 3)):
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": list(range(n))}, handle)
    assert load_cifar(folder)[1].tolist() == list(range(6))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataFileError, match="data_batch_3: not a CIFAR python batch"):
        load_cifar(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DataFileError, match="neither CIFAR-10"):
        load_cifar(tmp_path)


@pytest.mark.slow
def test_a_search_and_training_on_cifar_files(tmp_path):
    write_cifar10(tmp_path / "cifar", per_batch=16)
    config = load_config("cifar10-quick", ["--data.path", str(tmp_path / "cifar"), "--model.channels", "4",
                                           "--model.layers", "3", "--model.nodes", "2", "--search.epochs", "1",
                                           "--search.warmup_epochs", "0",
                                           "--search.batch_size", "20", "--train.epochs", "2", "--train.channels",
                                           "4", "--train.layers", "3", "--train.batch_size", "20"])
    run = search(config, tmp_path / "runs")
    trained = train(config, run / "genotype.json", tmp_path / "runs")
    results = json.loads((trained / "results.json").read_text())
    assert results["parameters"]["auxiliary"] > 0 and results["test"]["test_loss"] > 0


def write_images(root, classes=("cat", "dog"), per_class=3, size=(20, 12)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_image_folders_are_read_resized_and_cropped(tmp_path):
    write_images(tmp_path / "flat")
    files, labels, classes = ImageFolder.scan(tmp_path / "flat")
    assert classes == ["cat", "dog"] and labels == [0, 0, 0, 1, 1, 1]
    image, label = ImageFolder(files, labels, 8)[4]
    assert image.shape == (3, 8, 8) and label == 1 and 0 <= float(image.min()) <= float(image.max()) <= 1
    write_images(tmp_path / "split" / "train")
    write_images(tmp_path / "split" / "val", per_class=1)
    config = load_config("imagenet-quick", ["--data.path", str(tmp_path / "split"), "--data.image_size", "16"])
    from darts.workflows import load_data

    data = load_data(config)
    assert len(data.train) == 6 and len(data.test) == 2 and data.targets[0].classes == 2
    (tmp_path / "flat" / "dog" / "3.png").write_bytes(b"broken")
    with pytest.raises(DataFileError, match="3.png: not a readable image"):
        ImageFolder(*ImageFolder.scan(tmp_path / "flat")[:2], 8)[6]
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataFileError, match="cat: no image files"):
        ImageFolder.scan(tmp_path / "empty")


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 5)), "labels": np.zeros(4, int)}, "expected arrays x_train, y_train, x_test, y_test"),
    ({"x": np.zeros((4, 5)), "y": np.zeros(3, int)}, "x has 4 rows but y has 3"),
    ({"x": np.zeros((4, 5, 2, 2, 2)), "y": np.zeros(4, int)}, "expected (N, L) or (N, C, L) signals"),
    ({"x": np.zeros((4, 5)), "y": np.zeros(4)}, "y_train must be a 1-D array of integer class labels"),
    ({"x_train": np.zeros((4, 5)), "y_train": np.zeros(4, int), "x_test": np.zeros((2, 6)),
      "y_test": np.zeros(2, int)}, "train examples have shape (5,), test ones (6,)"),
])
def test_bad_npz_archives_are_named(tmp_path, arrays, message):
    np.savez(tmp_path / "data.npz", **arrays)
    with pytest.raises(DataFileError) as error:
        load_arrays(tmp_path / "data.npz")
    assert message in str(error.value) and "data.npz" in str(error.value)


def test_augmentation_on_tensors():
    torch.manual_seed(0)
    x = torch.arange(2 * 6 * 6, dtype=torch.float32).reshape(2, 6, 6)
    crop = RandomCrop(2)(x)
    padded = F.pad(x, [2, 2, 2, 2])
    assert crop.shape == x.shape and any(torch.equal(crop, padded[:, i:i + 6, j:j + 6])
                                         for i in range(5) for j in range(5))
    flips = {torch.equal(RandomFlip()(x), x.flip(-1)) for _ in range(20)}
    assert flips == {True, False}
    cut = Cutout(4)(torch.ones(3, 16, 16))
    zeros = (cut[0] == 0).sum()
    assert 0 < zeros <= 16 and torch.equal(cut[0] == 0, cut[2] == 0)  # the same square on every channel
    signal = Cutout(4)(torch.ones(2, 40))
    assert 0 < (signal[0] == 0).sum() <= 4
    normalized = Normalize([1.0, 2.0], [2.0, 4.0])(torch.tensor([[3.0], [6.0]]))
    assert normalized.ravel().tolist() == [1.0, 1.0]


# --- the same code in 1D -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_darts_space_and_evaluation_network_on_1d_signals(tmp_path):
    inputs, labels = motif_sequences(240, length=32, channels=2, num_classes=3, seed=0).tensors
    np.savez(tmp_path / "signals.npz", x=inputs.numpy(), y=labels.numpy() + 10)
    config = load_config("signals-quick", ["--data.path", str(tmp_path / "signals.npz"), "--model.channels", "4",
                                           "--search.epochs", "1", "--search.warmup_epochs", "0", "--train.epochs", "3",
                                           "--train.channels", "6", "--train.layers", "5",
                                           "--log.plots", "false", "--search.order", "first"])
    assert config.model.family == "conv1d"
    assert load_config({"task": "arrays", "data": {"path": str(tmp_path / "signals.npz")}}).model.family == "conv1d"
    run = search(config, tmp_path / "runs")
    assert load_genotype(run / "genotype.json").family == "conv1d"
    trained = train(config, run / "genotype.json", tmp_path / "runs")
    results = json.loads((trained / "results.json").read_text())
    assert results["parameters"]["auxiliary"] > 0 and not math.isnan(results["test"]["test_loss"])
    assert json.loads((trained / "labels.json").read_text())["classes"] == [10, 11, 12]
    figures = summary(config, "DARTS_V2", genotype_family="conv1d")  # the paper's cells, in 1D
    assert figures["input_shape"] == [2, 32] and figures["parameters"] > 0
