#!/usr/bin/env bash
# The prepared GPU check: one script, under 6 minutes on one H100, one JSON of figures.
#
#   bash benchmarks/gpu_check.sh [OUT.json]        # default: benchmarks/gpu_check_<GPU>_<time>.json
#
# 1. the architecture's tests on CUDA (float64: second order against autograd through the unrolled step and
#    the exact product) and the device tests (model, alphas and batches on the GPU; bf16 and fp16);
# 2. a quick search and a training from the CLI on CUDA (`--device cuda`);
# 3. the step-speed benchmark on CUDA: darts' plain, first, second, fast and fast-pc steps in fp32 and bf16,
#    and the published implementation's steps (fp32), with CUDA's peak memory;
# 4. a two-process torchrun search (NCCL) when the machine has two GPUs, skipped on one.
# It needs darts importable by `python3`: `python3 -m pip install --no-deps -e .`, plus any dependency the
# machine lacks (the lent GPU machines' image, seen 2026-11: torch 2.11 and all of darts' dependencies except
# pydantic; carry wheels of pydantic, pydantic-core, annotated-types and typing-inspection for Python 3.12).
# It never stops at a failed part: each part's exit status is in the JSON. Worst case 7.5 minutes (timeouts).
# A dry run of the script itself on a CPU: DEVICE=cpu CONFIGS=tiny bash benchmarks/gpu_check.sh /tmp/check.json
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
gpu=$($python -c "import torch; print(torch.cuda.get_device_name(0).replace(' ', '-'))" 2>/dev/null || echo none)
out=${1:-benchmarks/gpu_check_${gpu}_$(date +%Y%m%d-%H%M%S).json}
if [ -e "$out" ]; then echo "$out exists; give another file" >&2; exit 2; fi
work=$(mktemp -d)
device=${DEVICE:-cuda}
configs=${CONFIGS:-cnn-c8,cnn-c16-b64}
export PYTHONUNBUFFERED=1 DARTS_TEST_DEVICE=$device
started=$(date +%s)

echo "1/4 tests on CUDA" >&2
timeout 100 $python -m pytest -q -p no:cacheprovider tests/test_device.py \
    "tests/test_architecture.py::test_second_order_matches_autograd_through_the_unrolled_step" \
    "tests/test_architecture.py::test_the_forward_difference_of_the_fast_mode_approaches_the_exact_product" \
    > "$work/tests.log" 2>&1
tests=$?

echo "2/4 search and training from the CLI" >&2
timeout 70 $python -m darts search motifs-quick --device $device --search.epochs 4 --search.warmup_epochs 1 \
    --runs "$work/runs" --quiet > "$work/cli.log" 2>&1
cli=$?
if [ $cli -eq 0 ]; then
    searched=$(ls -d "$work"/runs/search-* | head -1)
    timeout 40 $python -m darts train motifs-quick --device $device --precision bf16 --genotype "$searched/genotype.json" \
        --runs "$work/runs" --quiet >> "$work/cli.log" 2>&1
    cli=$?
fi

echo "3/4 step speed, fp32 and bf16" >&2
steps=plain,first,second,fast,fast-pc
timeout 150 $python benchmarks/step_speed.py --configs "$configs" --device $device --precision fp32 \
    --steps $steps,ref-plain,ref-first,ref-second --repeats 5 --warmup 2 --out "$work/fp32.json" > "$work/speed.log" 2>&1
speed_fp32=$?
timeout 100 $python benchmarks/step_speed.py --configs "$configs" --device $device --precision bf16 \
    --steps $steps --repeats 5 --warmup 2 --out "$work/bf16.json" >> "$work/speed.log" 2>&1
speed_bf16=$?

echo "4/4 torchrun on two GPUs" >&2
gpus=$($python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
torchrun=skipped
if [ "$gpus" -ge 2 ]; then
    timeout 90 $python -m torch.distributed.run --nproc_per_node=2 -m darts search motifs-quick --device $device \
        --search.epochs 2 --search.warmup_epochs 1 --runs "$work/ddp" --quiet > "$work/torchrun.log" 2>&1
    torchrun=$?
fi

CONFIGS=$configs WORK=$work OUT=$out GPU=$gpu GPUS=$gpus STARTED=$started TESTS=$tests CLI=$cli SPEED_FP32=$speed_fp32 \
SPEED_BF16=$speed_bf16 TORCHRUN=$torchrun $python - <<'EOF'
"""Gather the parts into one JSON, with the issue's ratios."""
import json, os, time
from pathlib import Path

work = Path(os.environ["WORK"])


def rows(name):
    path = work / name
    return json.loads(path.read_text())["rows"] if path.exists() else []


def tail(name, lines=15):
    path = work / name
    return path.read_text().splitlines()[-lines:] if path.exists() else []


fp32, bf16 = rows("fp32.json"), rows("bf16.json")
find = lambda table, config, step: next((r for r in table if r["config"] == config and r["step"] == step
                                         and "failed" not in r), None)
ratios = {}
for config in os.environ["CONFIGS"].split(","):
    second, reference = find(fp32, config, "second"), find(fp32, config, "ref-second")
    if second and reference:
        ratios[f"{config} second order: speed-up over the published step"] = reference["seconds"] / second["seconds"]
        peak = "peak_cuda_gib" if "peak_cuda_gib" in second else "peak_rss_gib"
        ratios[f"{config} second order: peak memory ({peak}) against the published step"] = \
            second[peak] / reference[peak]
    for step in ("plain", "second", "fast"):
        a, b = find(fp32, config, step), find(bf16, config, step)
        if a and b:
            ratios[f"{config} {step}: bf16 speed-up over fp32"] = a["seconds"] / b["seconds"]
status = {part: os.environ[key] for part, key in (("tests", "TESTS"), ("cli", "CLI"), ("speed_fp32", "SPEED_FP32"),
                                                   ("speed_bf16", "SPEED_BF16"), ("torchrun", "TORCHRUN"))}
report = {"gpu": os.environ["GPU"], "gpus": int(os.environ["GPUS"]), "exit_status": status, "ratios": ratios,
          "seconds": round(time.time() - int(os.environ["STARTED"])), "fp32": fp32, "bf16": bf16,
          "logs": {name: tail(name) for name in ("tests.log", "cli.log", "speed.log", "torchrun.log")}}
import torch
report["torch"] = torch.__version__
Path(os.environ["OUT"]).write_text(json.dumps(report, indent=2))
for key, value in ratios.items():
    print(f"{key}: {value:.2f}")
print(f"parts' exit status: {status}; figures: {os.environ['OUT']}")
EOF
