"""Seconds per search step of every registered strategy against darts, in one process, taking turns.

    OMP_NUM_THREADS=1 python benchmarks/strategy_speed.py --config p3b5-quick --turns 3 [--order first]

A search step is what the search loop does per batch: one alpha step (of ``--order``) and one weight step.
Each turn runs every strategy once in turn on its own supernet (the same weights and batches), so a machine
whose speed drifts over minutes slows them alike. Prints each strategy's median step and its ratio to
darts's median; PC-DARTS builds its supernet with partial channels (K=4) and edge normalisation, the others
with the full edges.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_speed import CONFIGS, build, weight_step  # noqa: E402


def measure(config: str, turns: int, order: str) -> dict[str, list[float]]:
    import torch

    from darts import Architecture
    from darts.plugins import get_registry

    registry = get_registry()
    runs = {}
    for name in registry.strategy_names:
        strategy = registry.strategy(name)()
        if order not in strategy.orders:
            continue
        torch.manual_seed(0)
        network, loss_fn, train, val, lr = build(config, **strategy.network_options())
        network.set_strategy(strategy)
        strategy.start_epoch(1, 3)
        optimizer = torch.optim.SGD(network.parameters(), lr, momentum=0.9, weight_decay=3e-4)
        runs[name] = (network, loss_fn, train, val, optimizer, Architecture(network, optimizer, loss_fn, order=order))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for turn in range(turns + 1):  # the first turn warms up and is not counted
        for name, (network, loss_fn, train, val, optimizer, architecture) in runs.items():
            start = time.perf_counter()
            architecture.step(train, val)
            weight_step(network, loss_fn, optimizer, train)
            if turn:
                times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="p3b5-quick", choices=sorted(CONFIGS))
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--order", default="first", choices=["first", "second", "exact"])
    args = parser.parse_args(argv)
    if args.turns < 1:
        print(f"error: --turns must be at least 1, got {args.turns}", file=sys.stderr)
        return 2
    times = measure(args.config, args.turns, args.order)
    reference = statistics.median(times["darts"])
    print(f"{args.config}, {args.order} order, {args.turns} turns, median seconds per search step "
          f"(alpha step + weight step):\n")
    print("| strategy | seconds | ratio to darts |\n| --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {median / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
