"""Devices, precisions and the kernel seam.

Device-parametrised: ``DARTS_TEST_DEVICE=cuda`` runs the plumbing tests on a GPU (the CPU always). The
precision tests compare bf16 and fp16 autocast on the CPU with fp32 on the same batch; the kernel-seam tests
compare darts' CPU machinery with torch's operations (``DARTS_KERNELS=torch``).
"""

from __future__ import annotations

import functools
import json
import re

import pytest
import torch
import torch.nn.functional as F

from darts import SearchNetwork, kernels
from darts.architecture import Architecture
from darts.cli import main
from darts.device import Precision, resolve, to_device
from darts.training import Callback
from darts.workflows import evaluate, search, train
from tests.conftest import TEST_DEVICE as DEVICE
from tests.test_workflows import tiny

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA")


# --- the device ----------------------------------------------------------------------------------------------
def test_devices_resolve_and_auto_takes_cuda_only_where_there_is_one():
    assert resolve("cpu") == torch.device("cpu")
    assert resolve("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not one of auto, cpu, cuda, cuda:N, mps"):
        resolve("gpu")


@NO_CUDA
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_an_error_naming_what_was_found(spec):
    with pytest.raises(ValueError, match=rf"device '{spec}' asked for, but torch sees no CUDA GPU; found cpu "
                                         + re.escape(f"(torch {torch.__version__}")):
        resolve(spec)


@NO_CUDA
def test_the_cli_refuses_cuda_without_cuda_with_exit_2_and_no_run_directory(tmp_path, capsys):
    assert main(["search", "motifs-quick", "--device", "cuda", "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "error: device 'cuda' asked for, but torch sees no CUDA GPU; found cpu" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
    assert main(["search", "motifs-quick", "--device", "gpu"]) == 2
    assert "device is one of auto, cpu, cuda, cuda:N (a GPU's index) or mps, not 'gpu'" in capsys.readouterr().err
    assert main(["bench", "p3b5", "--quick", "--device", "cuda", "--runs", str(tmp_path / "bench")]) == 2
    assert "torch sees no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "bench").exists()


def test_batches_of_any_nesting_move_to_the_device():
    batch = ((torch.ones(2), torch.zeros(3)), {"a": torch.ones(1), "b": 4})
    moved = to_device(batch, torch.device("meta"))
    assert moved[0][0].device.type == moved[0][1].device.type == moved[1]["a"].device.type == "meta"
    assert moved[1]["b"] == 4


class _Where(Callback):
    """Records the devices of the model's weights, the batch and the outputs of every step."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def after_loss(self, trainer) -> None:
        from torch.utils._pytree import tree_leaves

        tensors = [*trainer.model.parameters(), *tree_leaves(trainer.batch), trainer.loss]
        self.seen |= {t.device.type for t in tensors}


@pytest.mark.slow
def test_the_configured_device_holds_the_model_the_alphas_and_every_batch(tmp_path):
    where = _Where()
    config = tiny("motifs-quick", "--device", DEVICE, "--model.channels", "4")
    run = search(config, tmp_path, callbacks=[where], quiet=True)
    assert where.seen == {torch.device(DEVICE).type}
    assert json.loads((run / "results.json").read_text())["final"]["arch_steps"] > 0
    trained = train(config, run / "genotype.json", tmp_path, callbacks=[where], quiet=True)
    assert where.seen == {torch.device(DEVICE).type} and (trained / "results.json").exists()
    # a run's files evaluate anywhere: on the CPU whatever device trained them
    expected = json.loads((trained / "results.json").read_text())["test"]
    assert evaluate(trained, device="cpu") == pytest.approx(expected, rel=1e-4, abs=1e-6)


# --- precision -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)  # fp32's reference, computed once for both reduced precisions
def _hypergradient(precision: str, order: str, family: str, difference: str = "central") -> torch.Tensor:
    torch.manual_seed(0)
    shape = {"conv1d": (16, 4, 32), "conv2d": (16, 3, 12, 12), "linear": (16, 12)}[family]
    network = SearchNetwork(family, shape[1], 8, 3, layers=3, nodes=2)
    optimizer = torch.optim.SGD(network.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    train_batch = torch.randn(*shape), torch.randint(0, 3, (16,))
    val_batch = torch.randn(*shape), torch.randint(0, 3, (16,))
    architecture = Architecture(network, optimizer, F.cross_entropy, order, difference=difference,
                                precision=Precision(precision))
    return torch.cat([g.reshape(-1) for g in architecture.hypergradient(train_batch, val_batch).total])


@pytest.mark.parametrize("family", ["conv1d", "conv2d", "linear"])
@pytest.mark.parametrize("order, difference, cosine, relative", [
    ("first", "central", 0.98, 0.2), ("second", "central", 0.95, 0.35), ("second", "forward", 0.95, 0.35),
    ("exact", "central", 0.98, 0.2)])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.slow
def test_autocast_on_the_cpu_gives_a_hypergradient_close_to_fp32s(family, order, difference, cosine, relative,
                                                                  precision):
    """Against fp32's own hypergradient of the same order, measured on these batches (one thread, AVX2): bf16
    cosine 0.991-0.995 and relative error 0.10-0.14 at first order, 0.97-0.98 and 0.19-0.25 at second (the
    finite-difference passes in float32), 0.991-0.996 and 0.10-0.14 exact; fp16 cosine at least 0.985, relative
    error at most 0.24. With the finite difference under autocast too, bf16's second order fell to cosine
    0.72-0.87, and fp16's exact product (double backward under autocast) overflowed to NaN."""
    reference = _hypergradient("fp32", order, family, difference)
    ours = _hypergradient(precision, order, family, difference)
    assert float(F.cosine_similarity(ours, reference, dim=0)) > cosine
    assert float((ours - reference).norm() / reference.norm()) < relative


@pytest.mark.parametrize("preset, precision", [("motifs-quick", "fp16"),
                                               ("tabular-quick", "bf16")])  # tabular: a regression target too
@pytest.mark.slow
def test_a_search_and_a_training_run_in_reduced_precision(preset, precision, tmp_path):
    config = tiny(preset, "--precision", precision, "--device", DEVICE)
    run = search(config, tmp_path, quiet=True)
    trained = train(config, run / "genotype.json", tmp_path, quiet=True)
    results = json.loads((trained / "results.json").read_text())
    assert 0 < results["test"]["test_loss"] < 10 and all(v == v for v in results["test"].values())  # no NaN
    checkpoint = torch.load(trained / "checkpoint.pt", weights_only=True)
    assert (checkpoint["scaler"] is not None) == (precision == "fp16")


def test_fp16_skips_an_alpha_step_whose_gradient_overflows():
    torch.manual_seed(0)
    network = SearchNetwork("linear", 12, 8, 3, layers=2, nodes=2)
    optimizer = torch.optim.SGD(network.parameters(), 0.05)
    architecture = Architecture(network, optimizer, F.cross_entropy, "first", precision=Precision("fp16"),
                                loss_scale=2.0 ** 120)  # overflows float16 on purpose
    before = [a.detach().clone() for a in network.arch_parameters()]
    batch = torch.randn(8, 12), torch.randint(0, 3, (8,))
    architecture.step(batch, batch)
    assert architecture.skipped_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(network.arch_parameters(), before))


# --- the kernel seam ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("family, shape", [("conv1d", (8, 4, 32)), ("conv2d", (8, 3, 12, 12)), ("linear", (8, 12))])
def test_switched_to_torch_every_result_is_the_same_to_float_tolerance(family, shape, monkeypatch):
    """The same supernet's loss, weight and alpha gradients and running statistics with darts' CPU machinery
    (with the numba kernels, and without numba) and with torch's operations alone."""
    from darts import compiled

    numba = compiled.njit

    def step(mode: str, with_numba: bool):
        monkeypatch.setenv(kernels.ENVIRONMENT, mode)
        monkeypatch.setattr(compiled, "njit", numba if with_numba else None)
        torch.manual_seed(0)
        network = SearchNetwork(family, shape[1], 8, 3, layers=3, nodes=2, partial_channels=2)
        x, y = torch.randn(*shape), torch.randint(0, 3, (8,))
        loss = F.cross_entropy(network(x), y)
        loss.backward()
        return loss, [p.grad for p in network.parameters()], [a.grad for a in network.arch_parameters()], \
            [b.clone() for b in network.buffers()]

    reference = step("torch", True)
    for with_numba in (True, False):
        ours = step("auto", with_numba)
        torch.testing.assert_close(ours[0], reference[0], rtol=1e-5, atol=1e-6)
        for a, b in zip(ours[1] + ours[2] + ours[3], reference[1] + reference[2] + reference[3]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_the_machinery_stands_aside_under_autocast_tracing_and_other_dtypes(monkeypatch):
    x = torch.randn(2, 3, 8)
    assert kernels.applies(x) and kernels.applies(x.double()) and not kernels.applies(x.half())
    assert not kernels.applies(x.bfloat16()) and not kernels.applies(x.to("meta"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not kernels.applies(x)
    monkeypatch.setenv(kernels.ENVIRONMENT, "torch")
    assert not kernels.applies(x) and not kernels.numba_applies(x)
    monkeypatch.setenv(kernels.ENVIRONMENT, "fast")
    with pytest.raises(ValueError, match="DARTS_KERNELS='fast' is not a kernel mode; use one of auto, torch"):
        kernels.applies(x)
