"""Trained networks trace and export on one thread, where darts' CPU kernels serve the eager passes: under
tracing, export and compilation only torch's operations run, and the traced program computes what eager does."""

from __future__ import annotations

import pytest
import torch

from darts import Network, SearchNetwork, load_genotype
from darts.kernels import numba_applies, tracing


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the README runs everything (the kernels serve eager passes at any count)
    yield
    torch.set_num_threads(threads)


NETWORKS = {
    "conv1d": lambda: (Network(load_genotype("DARTS_V2").with_family("conv1d"), 4, 8, 3, layers=5), (2, 4, 32)),
    "conv2d": lambda: (Network("DARTS_V2", 3, 8, 3, layers=5), (2, 3, 16, 16)),
    "conv1d supernet": lambda: (SearchNetwork("conv1d", 4, 4, 3, layers=3, nodes=2), (2, 4, 16)),
}


@pytest.mark.parametrize("name, how", [(name, how) for name in sorted(NETWORKS) for how in ("jit.trace", "export")
                                       if not (name.endswith("supernet") and how == "export")])
@pytest.mark.slow
def test_networks_trace_and_export_on_one_thread(one_thread, name, how):
    torch.manual_seed(0)
    network, shape = NETWORKS[name]()
    network.eval()
    x = torch.randn(*shape)
    assert numba_applies(x)  # eager passes use the kernels here
    with torch.no_grad():
        expected = network(x)
        program = torch.jit.trace(network, x) if how == "jit.trace" else torch.export.export(network, (x,)).module()
        torch.testing.assert_close(program(x), expected, rtol=1e-5, atol=1e-5)
        other = torch.randn(*shape)  # a traced program is not a recording of one input's values
        torch.testing.assert_close(program(other), network(other), rtol=1e-5, atol=1e-5)


def test_kernels_stand_aside_while_torch_traces(one_thread):
    seen = []

    def probe(x):
        seen.append((tracing(), numba_applies(torch.ones(2, 3, 4))))
        return x * 2

    probe(torch.ones(1))
    torch.jit.trace(probe, torch.ones(1))  # traced, then run again by the trace's own check
    assert seen[0] == (False, True) and (True, False) in seen
    assert all(not kernels for traced, kernels in seen if traced)


# --- darts export: a train run's network, written and loaded back ------------------------------------------
EXPORT_CASES = ["motifs-quick", "digits-quick", "tabular-quick", "keywords-quick"]  # conv1d, conv2d, linear, recurrent


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """A finished one-epoch train run of a random genotype of each family's space."""
    from darts.assemble import build_search_network
    from darts.workflows import load_data, train
    from tests.test_workflows import tiny

    runs = {}
    for preset in EXPORT_CASES:
        folder = tmp_path_factory.mktemp(preset)
        config = tiny(preset, "--train.epochs", "1")
        genotype = build_search_network(config.model, load_data(config)).random_genotype(seed=1)
        genotype.save(folder / "genotype.json")
        runs[preset] = train(config, folder / "genotype.json", folder, quiet=True)
    return runs


@pytest.mark.parametrize("format, threads", [("torchscript", 1), ("exported-program", 1), ("onnx", 1)])
@pytest.mark.parametrize("preset", EXPORT_CASES)
@pytest.mark.slow
def test_darts_export_writes_each_format_equal_to_eager_mode(trained_runs, preset, format, threads, tmp_path):
    """Each format's file, loaded back, gives eager mode's outputs to 1e-5 on a batch of test examples, at one
    thread (the numba kernels serve eager mode, never the traced program)."""
    if format == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    from darts.export import _flat
    from darts.workflows import _finished_run, export

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        done = export(trained_runs[preset], format, tmp_path / f"model-{format}")
    finally:
        torch.set_num_threads(before)
    assert done.path.exists() and done.max_difference < 1e-5
    _, _, data, model = _finished_run(trained_runs[preset], "export")
    x = torch.stack([data.test[i][0] for i in range(5)])  # another batch size than the trace's
    with torch.no_grad():
        eager = _flat(model.eval()(x))
        if format == "torchscript":
            ours = _flat(torch.jit.load(done.path)(x))
        elif format == "exported-program":
            ours = _flat(torch.export.load(done.path).module()(x))
        else:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
            ours = [torch.from_numpy(o) for o in session.run(None, {"input": x.numpy()})]
    assert len(ours) == len(eager)
    for a, b in zip(ours, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("format", ["torchscript", "exported-program"])
@pytest.mark.slow
def test_darts_export_works_at_two_threads(trained_runs, format, tmp_path):
    from darts.workflows import export

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        done = export(trained_runs["motifs-quick"], format, tmp_path / "model")
    finally:
        torch.set_num_threads(before)
    assert done.max_difference < 1e-5


def test_darts_export_refuses_what_it_cannot_write(trained_runs, tmp_path, capsys):
    from darts.cli import main

    run = trained_runs["motifs-quick"]
    assert main(["export", str(run), "--out", str(tmp_path / "a.pt")]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "a.pt")]) == 2
    assert "a.pt exists already; choose another --out (nothing is overwritten)" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2
    assert "has no run.json; export takes the directory of a finished train run" in capsys.readouterr().err
