"""Second order against the plain step, in one process, the two taking turns.

    OMP_NUM_THREADS=1 python benchmarks/second_order_ratio.py --config cnn-c8 --turns 4

Each turn runs a plain step, a second-order step and a plain step again, and records the second-order
step's time over the mean of the two plain steps around it. On a shared machine whose speed drifts over
minutes, this ratio is steadier than one taken between separate processes (``step_speed.py``). Prints the
medians of both steps, the ratio of the medians and every turn's ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_speed import CONFIGS, build, weight_step  # noqa: E402


def measure(config: str, turns: int) -> dict:
    import torch

    from darts import Architecture
    from darts.allocator import keep_freed_memory_unless_disabled

    keep_freed_memory_unless_disabled()  # as the command line does
    torch.manual_seed(0)
    network, loss_fn, train, val, lr = build(config)
    optimizer = torch.optim.SGD(network.parameters(), lr, momentum=0.9, weight_decay=3e-4)
    architecture = Architecture(network, optimizer, loss_fn, order="second")

    def step(second: bool) -> float:
        start = time.perf_counter()
        if second:
            architecture.step(train, val)
        weight_step(network, loss_fn, optimizer, train)
        return time.perf_counter() - start

    step(False), step(True)  # warm-up
    plain, second, ratios = [], [], []
    for turn in range(turns):
        before, middle, after = step(False), step(True), step(False)
        plain += [before, after]
        second.append(middle)
        ratios.append(middle / ((before + after) / 2))
        print(f"  turn {turn + 1}/{turns}: plain {before:.3f} and {after:.3f} s, second order {middle:.3f} s, "
              f"ratio {ratios[-1]:.2f}", file=sys.stderr, flush=True)
    return {"config": config, "plain_seconds": statistics.median(plain), "second_seconds": statistics.median(second),
            "ratio_of_medians": statistics.median(second) / statistics.median(plain),
            "turn_ratios": ratios, "median_turn_ratio": statistics.median(ratios)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="cnn-c8", choices=list(CONFIGS), help="a configuration of step_speed.py")
    parser.add_argument("--turns", type=int, default=4, help="turns of plain, second order, plain (default 4)")
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error(f"--turns must be at least 1, got {args.turns}")
    result = measure(args.config, args.turns)
    print(f"{result['config']}: plain {result['plain_seconds']:.3f} s, second order {result['second_seconds']:.3f} s, "
          f"ratio of medians {result['ratio_of_medians']:.2f}, median of the turns' ratios "
          f"{result['median_turn_ratio']:.2f} ({', '.join(f'{r:.2f}' for r in result['turn_ratios'])})")
    return result


if __name__ == "__main__":
    main()
