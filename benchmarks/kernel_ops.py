"""Each operation behind the kernel seam, darts' CPU machinery against torch's operations, in one process.

    OMP_NUM_THREADS=1 python benchmarks/kernel_ops.py --threads 1,2 --out kernel_ops.json

For every operation darts computes its own way on the CPU (the numba kernels, the autograd nodes that keep
less, the oneDNN-specific rewrites), on the shapes of the ``cnn-c8`` supernet (32 images of 16 channels,
32x32, channels-last) and of P3B5's quick search (64 sequences of 8 to 16 channels, 128 long), the median time
of a forward and backward pass with ``DARTS_KERNELS=auto`` and with ``DARTS_KERNELS=torch``, the two taking
turns, at each thread count. A ratio above 1 means darts' way is faster. The figures decide which machinery
is kept, and where (the numba kernels apply at one thread only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from darts import kernels  # noqa: E402
from darts.allocator import keep_freed_memory_unless_disabled  # noqa: E402
from darts.search_space.weighted_norm import weighted_batch_norm  # noqa: E402
from darts_plugins.depthwise import DepthwiseConv, SeparableConv  # noqa: E402
from darts_plugins.pointwise import PointwiseConv  # noqa: E402
from darts_plugins.pooling import AvgPool, MaxPool  # noqa: E402

IMAGE = (32, 16, 32, 32)
SEQUENCE = (64, 16, 128)


def _image(shape=IMAGE) -> torch.Tensor:
    return torch.randn(*shape).contiguous(memory_format=torch.channels_last).requires_grad_()


def _sequence(shape=SEQUENCE) -> torch.Tensor:
    return torch.randn(*shape).requires_grad_()


def _cases():
    """name -> (module or function, input) on the supernets' shapes."""
    norm = torch.nn.BatchNorm2d(16, affine=False)
    norm_1d = torch.nn.BatchNorm1d(16, affine=False)
    weight = torch.tensor(0.3, requires_grad=True)
    return {
        "dil_conv depthwise 3x3 d2 (images)": (DepthwiseConv(2, 16, 3, padding=2, dilation=2), _image()),
        "depthwise 5x5 (images)": (DepthwiseConv(2, 16, 5, padding=2), _image()),
        "sep_conv half 3x3 (images)": (SeparableConv(2, 16, 16, 3, padding=1, relu=True), _image()),
        "sep_conv half 5 (sequences)": (SeparableConv(1, 16, 16, 5, padding=2, relu=True), _sequence()),
        "dil_conv half 5 d2 (sequences)": (SeparableConv(1, 16, 16, 5, padding=4, dilation=2, relu=True),
                                          _sequence()),
        "pointwise 1x1 (images)": (PointwiseConv(2, 16, 16), _image()),
        "pointwise 1 (sequences)": (PointwiseConv(1, 16, 16), _sequence()),
        "max_pool 3 (images)": (MaxPool(2, 3, 1, 1), _image()),
        "max_pool 3 (sequences)": (MaxPool(1, 3, 1, 1), _sequence()),
        "avg_pool 3 (images)": (AvgPool(2, 3, 1, 1), _image()),
        "avg_pool 3 (sequences)": (AvgPool(1, 3, 1, 1), _sequence()),
        "weighted batch norm (images)": (lambda x: weighted_batch_norm(x, weight, norm), _image()),
        "weighted batch norm (sequences)": (lambda x: weighted_batch_norm(x, weight, norm_1d), _sequence()),
    }


def _pass(op, x: torch.Tensor) -> float:
    start = time.perf_counter()
    out = op(x)
    out.backward(torch.ones_like(out))
    x.grad = None
    return time.perf_counter() - start


def measure(repeats: int, threads: int) -> list[dict]:
    torch.set_num_threads(threads)
    rows = []
    for name, (op, x) in _cases().items():
        times = {"auto": [], "torch": []}
        for _ in range(2):  # warm-up, both ways (numba compiles or loads its cache)
            for mode in times:
                os.environ[kernels.ENVIRONMENT] = mode
                _pass(op, x)
        for _ in range(repeats):
            for mode in times:  # taking turns: a machine whose speed drifts slows both alike
                os.environ[kernels.ENVIRONMENT] = mode
                times[mode].append(_pass(op, x))
        auto, plain = statistics.median(times["auto"]), statistics.median(times["torch"])
        rows.append({"operation": name, "threads": threads, "darts_ms": auto * 1e3, "torch_ms": plain * 1e3,
                     "speedup": plain / auto})
        print(f"{name:<36}{threads:>3} thread(s){auto * 1e3:>10.3f} ms{plain * 1e3:>10.3f} ms{plain / auto:>9.2f}x",
              flush=True)
    os.environ.pop(kernels.ENVIRONMENT, None)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--repeats", type=int, default=30, help="timed passes of each way (default 30)")
    parser.add_argument("--out", help="write the figures as JSON here (never over an existing file)")
    args = parser.parse_args(argv)
    if args.out and os.path.exists(args.out):
        parser.error(f"{args.out} exists; give another --out")
    kept = keep_freed_memory_unless_disabled()  # as the command line does (both ways alike)
    torch.manual_seed(0)
    print(f"{'operation':<36}{'':>13}{'darts':>13}{'torch':>13}{'torch/darts':>12}")
    rows = [row for threads in map(int, args.threads.split(",")) for row in measure(args.repeats, threads)]
    if args.out:
        machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                   "torch": torch.__version__, "kept_freed_memory": kept}
        with open(f"{args.out}.partial", "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "rows": rows}, handle, indent=2)
        os.replace(f"{args.out}.partial", args.out)
    return rows


if __name__ == "__main__":
    main()
