"""Time and peak memory of one DARTS search step: a plain weight step, first order, second order (finite
difference) and exact second order, on the supernets issue 8 names.

    OMP_NUM_THREADS=1 python benchmarks/step_speed.py                 # every configuration (long at C=16, batch 64)
    OMP_NUM_THREADS=1 python benchmarks/step_speed.py --configs cnn-c8 --repeats 5 --out step_speed.json
    python benchmarks/step_speed.py --configs cnn-c8 --device cuda --precision bf16 --out gpu_bf16.json

A step is the alpha step of the given order (none for the plain step) followed by the weight step, as a
search runs them. Each (configuration, step) runs in a fresh process, so its peak resident memory is its
own; the time is the median of ``--repeats`` steps after ``--warmup``. With ``--rounds R`` every step is
measured R times, the steps taking turns, and the median is over all rounds: a shared machine whose speed
drifts by 10-40 % over minutes then slows every step alike instead of whichever ran during a slow spell.
Prints a table with the ratios to the plain step and writes the figures as JSON. Every step runs with glibc
keeping freed memory, as the command line does (``darts.allocator``); ``DARTS_KERNELS=torch``
measures with glibc's defaults and torch's operations only.

The ``ref-plain``, ``ref-first`` and ``ref-second`` steps run the published DARTS implementation's step
(``reference_darts.py``) on the same supernet (CNN configurations only), to compare on the machine at hand.
On a GPU (``--device cuda``) every step is synchronised and the peak memory compared is CUDA's (allocated);
``--precision bf16`` or ``fp16`` runs darts' steps under autocast (the published ones stay fp32).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

#: name -> (family, input shape, classes, channels, cells, nodes, batch)
CONFIGS = {
    "cnn-c8": ("conv2d", (3, 32, 32), 10, 8, 5, 4, 32),
    "cnn-c16-b16": ("conv2d", (3, 32, 32), 10, 16, 8, 4, 16),
    "cnn-c16-b64": ("conv2d", (3, 32, 32), 10, 16, 8, 4, 64),
    "p3b5-quick": ("p3b5", None, None, None, None, None, None),
    "tiny": ("conv2d", (3, 8, 8), 10, 8, 3, 2, 4),  # for the tests (C=8: PC-DARTS' K=4 leaves 2 channels)
}
STEPS = ("plain", "first", "second", "exact", "fast", "fast-pc")
#: PC-DARTS' partial channels of the ``fast-pc`` step (its paper's K), with edge normalisation
PC_K = 4
REFERENCE_STEPS = ("ref-plain", "ref-first", "ref-second")
#: the published DARTS implementation on a machine of this kind, 1 thread, cnn-c8 (issue 8)
REFERENCE = {"plain": (3.2, 1.8), "first": (6.3, 1.9), "second": (12.8, 2.4)}


def measure(config: str, step: str, repeats: int, warmup: int, device: str = "cpu",
            precision: str = "fp32") -> dict:
    """Build the supernet and its data, run the steps; in this process (called in a fresh one)."""
    import torch

    from darts import Architecture
    from darts.allocator import keep_freed_memory_unless_disabled
    from darts.device import Precision, to_device

    kept = keep_freed_memory_unless_disabled()  # as the command line does, for every step (the published one too)
    torch.manual_seed(0)
    where = torch.device(device)
    if step in REFERENCE_STEPS:
        if precision != "fp32":
            raise SystemExit("the published implementation runs in fp32 only")
        return {**measure_reference(config, step, repeats, warmup, where), "kept_freed_memory": kept}
    pc = step == "fast-pc"  # the fast mode with PC-DARTS' partial channels and edge normalisation
    network, loss_fn, train, val, lr = build(config, partial_channels=PC_K if pc else 1, edge_normalization=pc)
    network.to(where)
    train, val = to_device(train, where), to_device(val, where)
    cast = Precision(precision, where)
    optimizer = torch.optim.SGD(network.parameters(), lr, momentum=0.9, weight_decay=3e-4)
    fast = step in ("fast", "fast-pc")  # forward difference, the weight step reuses the virtual step's gradient
    architecture = Architecture(network, optimizer, loss_fn, order="second",
                                difference="forward" if fast else "central", reuse_gradient=fast, precision=cast)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def one_step() -> None:
        if step != "plain":
            architecture.step(train, val, order="second" if fast else step)
        weight_step(network, loss_fn, optimizer, train, architecture.train_gradient if fast else None, cast)

    return {**timed(config, step, one_step, repeats, warmup, baseline, network), "kept_freed_memory": kept,
            "precision": precision}


def weight_step(network, loss_fn, optimizer, batch, precomputed=None, precision=None) -> None:
    """The weight step as :class:`darts.training.Trainer` takes it: the gradient (``precomputed``: the
    architecture's ``train_gradient``, or a backward pass under the precision's autocast), the optimiser's
    step, the gradient dropped."""
    import contextlib

    if precomputed is not None:
        for weight, grad in zip(precomputed[0], precomputed[1]):
            weight.grad = grad
    else:
        with precision.autocast() if precision is not None else contextlib.nullcontext():
            loss = loss_fn(network(batch[0]), batch[1])
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def build(config: str, **options):
    """(supernet, loss function, training batch, validation batch, learning rate) of ``config``; ``options``
    go to the supernet (partial channels, edge normalisation)."""
    import torch
    import torch.nn.functional as F

    from darts import SearchNetwork

    family, shape, classes, channels, cells, nodes, batch = CONFIGS[config]
    if family == "p3b5":
        from darts.config import load_config
        from darts.assemble import build_search_network
        from darts.training import TaskLoss
        from darts.workflows import load_data

        settings = load_config("p3b5-quick")
        data = load_data(settings)
        network = build_search_network(settings.model.model_copy(update=options), data)
        loader = torch.utils.data.DataLoader(data.train, settings.search.batch_size)
        batches = iter(loader)
        return network, TaskLoss(data.targets, data.multi_task), next(batches), next(batches), settings.search.lr
    network = SearchNetwork(family, shape[0], channels, classes, layers=cells, nodes=nodes, **options)
    train = (torch.randn(batch, *shape), torch.randint(0, classes, (batch,)))
    val = (torch.randn(batch, *shape), torch.randint(0, classes, (batch,)))
    return network, F.cross_entropy, train, val, 0.025


def measure_reference(config: str, step: str, repeats: int, warmup: int, device=None) -> dict:
    """The published implementation's step (``reference_darts.py``) on a CNN configuration, on ``device``."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import reference_darts

    family, shape, classes, channels, cells, nodes, batch = CONFIGS[config]
    if family != "conv2d" or shape[0] != 3:
        raise SystemExit(f"the published implementation is a 3-channel image CNN; {config} is not one")
    device = device or torch.device("cpu")
    network = reference_darts.Network(channels, classes, cells, steps=nodes, multiplier=nodes).placed(device)
    train = (torch.randn(batch, *shape, device=device), torch.randint(0, classes, (batch,), device=device))
    val = (torch.randn(batch, *shape, device=device), torch.randint(0, classes, (batch,), device=device))
    optimizer = torch.optim.SGD(network.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    architect = reference_darts.Architect(network)
    order = {"ref-plain": None, "ref-first": "first", "ref-second": "second"}[step]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return timed(config, step, lambda: reference_darts.search_step(network, architect, optimizer, train, val, order),
                 repeats, warmup, baseline, network)


def timed(config: str, step: str, one_step, repeats: int, warmup: int, baseline: int, network) -> dict:
    """Run ``one_step`` ``warmup`` times, then time it ``repeats`` times (wall and CPU seconds; on a GPU
    synchronised, with the peak of CUDA memory allocated over the steps)."""
    import torch

    cuda = next(network.parameters()).is_cuda
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        one_step()
    times, cpu_times = [], []
    for _ in range(repeats):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        one_step()
        sync()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = {"config": config, "step": step, "seconds": statistics.median(times), "times": times,
           "cpu_times": cpu_times, "peak_rss_gib": peak / 2**20, "rss_before_steps_gib": baseline / 2**20,
           "weights": sum(p.numel() for p in network.parameters()), "threads": torch.get_num_threads(),
           "device": str(next(network.parameters()).device)}
    if cuda:
        row["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def _peak(row: dict) -> float:
    """The peak memory compared between steps: CUDA memory on a GPU, the process's resident set on a CPU."""
    return row.get("peak_cuda_gib", row["peak_rss_gib"])


def run_one(config: str, step: str, repeats: int, warmup: int, device: str = "cpu", precision: str = "fp32") -> dict:
    """Measure one (configuration, step) in a fresh process; a process that dies is recorded as failed."""
    result = subprocess.run([sys.executable, __file__, "--one", config, step, "--repeats", str(repeats),
                             "--warmup", str(warmup), "--device", device, "--precision", precision],
                            capture_output=True, text=True)
    if result.returncode:  # e.g. the exact step of a large supernet: recorded, and the others go on
        why = ("killed by the system (out of memory?)" if result.returncode < 0 else
               (result.stderr.strip().splitlines() or ["no message"])[-1])
        return {"config": config, "step": step, "failed": why}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="cnn-c8,cnn-c16-b16,cnn-c16-b64,p3b5-quick",
                        help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="comma-separated, from plain, first, second, exact, fast (second order, forward "
                             f"difference, gradient reused), fast-pc (fast, with PC-DARTS' K={PC_K} and edge "
                             "normalisation), ref-plain, ref-first, ref-second (the published implementation)")
    parser.add_argument("--rounds", type=int, default=1, help="measure every step this many times, in turns "
                                                              "(default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps; the median is reported (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--out", default="step_speed.json", help="where to write the figures (default step_speed.json)")
    parser.add_argument("--device", default="cpu", help="cpu (the default), cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="autocast of darts' steps (the published implementation's are fp32 only)")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "STEP"), help=argparse.SUPPRESS)  # the worker
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.repeats, args.warmup, args.device, args.precision)))
        return []
    configs, steps = args.configs.split(","), args.steps.split(",")
    unknown = [c for c in configs if c not in CONFIGS] + [s for s in steps if s not in STEPS + REFERENCE_STEPS]
    if unknown:
        parser.error(f"unknown configuration or step {unknown}; configurations: {', '.join(CONFIGS)}; "
                     f"steps: {', '.join(STEPS + REFERENCE_STEPS)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if os.path.exists(args.out):  # never overwrite a run's figures
        parser.error(f"{args.out} exists; give another --out or move it away")
    results: dict[tuple[str, str], dict] = {}
    for round_ in range(args.rounds):
        for config in configs:
            for step in steps:
                if "failed" in results.get((config, step), {}):
                    continue
                row = run_one(config, step, args.repeats, args.warmup, args.device,
                              "fp32" if step in REFERENCE_STEPS else args.precision)
                earlier = results.get((config, step))
                if earlier and "failed" not in row:  # merge the rounds: all times, the highest peak
                    row["times"] = earlier["times"] + row["times"]
                    row["cpu_times"] = earlier["cpu_times"] + row["cpu_times"]
                    row["seconds"] = statistics.median(row["times"])
                    row["peak_rss_gib"] = max(earlier["peak_rss_gib"], row["peak_rss_gib"])
                    if "peak_cuda_gib" in row:
                        row["peak_cuda_gib"] = max(earlier["peak_cuda_gib"], row["peak_cuda_gib"])
                results[(config, step)] = row
                progress = row.get("failed") or f"{row['seconds']:.3f} s (median so far)"
                print(f"  round {round_ + 1}/{args.rounds} {config} {step}: {progress}", file=sys.stderr, flush=True)
    rows = list(results.values())
    plain = {r["config"]: r for r in rows if r["step"] == "plain" and "failed" not in r}
    for row in rows:
        if "failed" in row:
            continue
        base = plain.get(row["config"])
        row["time_ratio_to_plain"] = row["seconds"] / base["seconds"] if base else None
        row["memory_ratio_to_plain"] = _peak(row) / _peak(base) if base else None
        # the fast modes are compared with the published second order (quoted, and measured in the same run)
        compared = {"fast": "second", "fast-pc": "second"}.get(row["step"], row["step"])
        reference = REFERENCE.get(compared) if row["config"] == "cnn-c8" else None
        row["reference_seconds"], row["reference_peak_gib"] = reference or (None, None)
        measured = results.get((row["config"], "ref-" + compared))
        if measured and "failed" not in measured:
            row["speedup_over_measured_reference"] = measured["seconds"] / row["seconds"]
            row["memory_ratio_to_measured_reference"] = _peak(row) / _peak(measured)
    print(f"\n{'config':<13}{'step':<11}{'s/step':>9}{'x plain':>9}{'peak GiB':>10}{'x plain':>9}"
          f"{'faster than ref here':>22}{'issue reference':>17}")
    for row in rows:
        if "failed" in row:
            print(f"{row['config']:<13}{row['step']:<11}  failed: {row['failed']}")
            continue
        ratio = f"{row['time_ratio_to_plain']:.2f}" if row["time_ratio_to_plain"] else "-"
        memory = f"{row['memory_ratio_to_plain']:.2f}" if row["memory_ratio_to_plain"] else "-"
        here = (f"{row['speedup_over_measured_reference']:.2f}x, "
                f"{row['memory_ratio_to_measured_reference']:.2f} mem" if "speedup_over_measured_reference" in row
                else "")
        reference = f"{row['reference_seconds']} s, {row['reference_peak_gib']} GiB" if row["reference_seconds"] else ""
        print(f"{row['config']:<13}{row['step']:<11}{row['seconds']:>9.3f}{ratio:>9}{_peak(row):>10.2f}"
              f"{memory:>9}{here:>22}{reference:>17}")
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch": _version("torch"),
               "numba": _version("numba"), "device": args.device, "precision": args.precision}
    partial = f"{args.out}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump({"machine": machine, "command": sys.argv, "rows": rows}, handle, indent=2)
    os.replace(partial, args.out)
    print(f"\nfigures: {args.out}")
    return rows


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
