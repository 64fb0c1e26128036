"""torch.distributed with 2 gloo processes: alphas stay identical, the alpha gradient equals one process with
the global batch, a distributed search gives the single-process genotype, and resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from darts import Architecture, Family, SearchNetwork, register_family, register_primitive
from darts.config import load_config
from darts.plugins import get_registry
from darts.training import Callback
from darts.training.trainer import _distributed
from darts.workflows import RunError, search

WORLD = 2
ORDERS = ("first", "second")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)


def _spawn(function, *args) -> None:
    mp.spawn(function, args=(_free_port(), *args), nprocs=WORLD, join=True)


# --- the alpha step -------------------------------------------------------------------------------------------
def _problem(batch: int = 8):
    """A double-precision supernet in eval mode (per-example BatchNorm, no batch statistics) and data."""
    torch.manual_seed(0)
    network = SearchNetwork("conv1d", 3, 4, 3, layers=3, nodes=2).double().eval()
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.normal_(0, 0.5)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(2 * batch, 3, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (2 * batch,),
                                                                                              generator=g))
               for _ in range(2)]
    return network, batches


def _hypergradient_worker(rank: int, port: int, out: str) -> None:
    _join(rank, port)
    for order in ORDERS:
        network, (train, val) = _problem()
        local = lambda batch: tuple(t[rank * 8:(rank + 1) * 8] for t in batch)  # noqa: E731 - this rank's half
        optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
        architecture = Architecture(network, optimizer, F.cross_entropy, order=order)
        total = architecture.hypergradient(local(train), local(val)).total
        # several steps, each rank on its own data: alphas and weights must stay identical everywhere
        ddp = _distributed(network)
        g = torch.Generator().manual_seed(100 + rank)
        for _ in range(3):
            x, y = torch.randn(8, 3, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g)
            xv, yv = torch.randn(8, 3, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g)
            architecture.step((x, y), (xv, yv))
            optimizer.zero_grad()
            F.cross_entropy(ddp(x), y).backward()
            optimizer.step()
        torch.save({"total": total, "alphas": [a.detach() for a in network.arch_parameters()],
                    "weights": [w.detach() for w in network.parameters()]}, f"{out}/{order}-rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_take_the_alpha_step_of_one_process_with_the_global_batch(tmp_path):
    _spawn(_hypergradient_worker, str(tmp_path))  # both orders in one process group
    for order in ORDERS:
        ranks = [torch.load(tmp_path / f"{order}-rank{r}.pt") for r in range(WORLD)]
        network, (train, val) = _problem()
        optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
        expected = Architecture(network, optimizer, F.cross_entropy, order=order).hypergradient(train, val).total
        for result in ranks:
            for got, want in zip(result["total"], expected):
                torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        for a, b in zip(ranks[0]["alphas"] + ranks[0]["weights"], ranks[1]["alphas"] + ranks[1]["weights"]):
            assert torch.equal(a, b), order  # bit-identical on every rank after several steps


# --- whole searches -------------------------------------------------------------------------------------------
class PlainLinear(Family):
    """Fully connected glue without BatchNorm, so that a batch split over ranks is exactly the global batch."""

    def stem(self, in_channels: int, out_channels: int) -> nn.Module:
        return nn.Linear(in_channels, out_channels)

    def preprocess(self, in_channels: int, out_channels: int, affine: bool = True) -> nn.Module:
        return nn.Linear(in_channels, out_channels, bias=False)

    reduce = preprocess


def _register_plain() -> None:
    if "plain_linear" in get_registry().family_names:
        return
    register_family(PlainLinear("plain_linear", ("none", "skip_connect", "dense", "tanh_dense")))
    from darts.search_space.zero import Zero

    register_primitive("plain_linear", "none")(lambda c, stride: Zero(stride))
    register_primitive("plain_linear", "skip_connect")(lambda c, stride: nn.Identity())
    register_primitive("plain_linear", "dense")(lambda c, stride: nn.Sequential(nn.ReLU(), nn.Linear(c, c)))
    register_primitive("plain_linear", "tanh_dense")(lambda c, stride: nn.Sequential(nn.Tanh(), nn.Linear(c, c)))


def _config(batch: int, *extra: str):
    _register_plain()
    return load_config("tabular-quick", ["--log.plots", "false",
                                         "--model.family", "plain_linear", "--model.channels", "8", "--model.layers",
                                         "2", "--model.nodes", "2", "--data.samples", "256", "--data.test_samples",
                                         "64", "--search.epochs", "3",
                                         "--search.warmup_epochs", "0", "--search.batch_size", str(batch),
                                         "--search.arch_lr", "0.05", *extra])


class PoisonLoss(Callback):
    order = -1

    def after_loss(self, trainer) -> None:
        if (trainer.epoch + 1, trainer.batch_index + 1) == (2, 2):
            trainer.loss = trainer.loss * float("nan")


def _search_worker(rank: int, port: int, runs: str) -> None:
    """In one process group: a whole search, a search stopped by a NaN in epoch 2, and its resumption (a new
    process group resumes alike: the checkpoint, not the processes, carries the state)."""
    _join(rank, port)
    config = _config(16)
    search(config, f"{runs}/two", quiet=True)
    try:
        search(config, f"{runs}/stopped", quiet=True, callbacks=[PoisonLoss()])
    except RunError:
        pass
    (run,) = [p for p in os.scandir(f"{runs}/stopped") if p.is_dir()]
    if rank == 0:
        shutil.copytree(run.path, f"{runs}/copy")  # the checkpoint as the stop left it, for one process below
    dist.barrier()
    search(resume=run.path, quiet=True)
    dist.destroy_process_group()


def _genotype(runs) -> dict:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return json.loads((run / "genotype.json").read_text())


@pytest.mark.slow
def test_a_distributed_search_finds_the_single_process_genotype_and_resumes_in_one_or_two_processes(
        tmp_path, plain_family):
    single = search(_config(32), tmp_path / "single", quiet=True)  # one process, the global batch of 2 x 16
    _spawn(_search_worker, str(tmp_path))
    (two,) = (tmp_path / "two").iterdir()
    assert json.loads((single / "genotype.json").read_text()) == _genotype(tmp_path / "two")
    import pandas as pd

    a, b = pd.read_csv(single / "metrics.csv"), pd.read_csv(two / "metrics.csv")
    assert a["val_loss"].tolist() == pytest.approx(b["val_loss"].tolist(), rel=1e-4)
    assert len(list(two.iterdir())) == len(list(single.iterdir()))  # rank 0 alone wrote the run, completely

    (stopped,) = (tmp_path / "stopped").iterdir()
    assert torch.load(tmp_path / "copy" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert _genotype(tmp_path / "stopped") == _genotype(tmp_path / "two")
    resumed = pd.read_csv(stopped / "metrics.csv")
    assert resumed["val_loss"].tolist() == pytest.approx(b["val_loss"].tolist(), rel=1e-6)
    # the same checkpoint also resumes in one process: 2 processes stopped it, 1 finishes it
    search(resume=tmp_path / "copy", quiet=True)
    assert json.loads((tmp_path / "copy" / "results.json").read_text())["epochs"] == 3


@pytest.mark.slow
def test_torchrun_runs_the_python_api_and_the_cli_as_one_run_each(tmp_path):
    """Under torchrun the Python API joins the process group itself, and ``python -m darts`` (run here in the
    same two processes, after it) works alike: each makes one run folder, and only rank 0 prints."""
    import subprocess
    import sys

    shrink = ["--data.samples", "128", "--data.test_samples", "32", "--model.channels", "4", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--search.batch_size", "16"]
    script = tmp_path / "script.py"
    script.write_text(
        "import runpy, sys\n"
        "import torch.distributed as dist\n"
        "from darts.config import load_config\n"
        "from darts.workflows import search\n"
        f"config = load_config('tabular-quick', {shrink!r})\n"
        "assert not dist.is_initialized()\n"
        "search(config, sys.argv[1], quiet=True)\n"
        "assert dist.is_initialized()  # the API joined torchrun's group\n"
        f"sys.argv = ['darts', 'search', 'tabular-quick', *{shrink!r}, '--runs', sys.argv[2], '--quiet']\n"
        "try:\n"
        "    runpy.run_module('darts', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
               str(script), str(tmp_path / "api"), str(tmp_path / "cli")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for runs in ("api", "cli"):
        (run,) = (tmp_path / runs).iterdir()
        assert (run / "results.json").exists()
    assert result.stdout.count("search finished") == 1  # the CLI's line, from rank 0 alone
