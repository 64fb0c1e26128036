"""Kill ``darts search``, ``train`` and ``bench`` at random moments, resume each, compare with an uninterrupted run.

    OMP_NUM_THREADS=1 python benchmarks/kill_resume.py [--kills 10] [--seed 0] [--out DIR]

For each command a reference run goes first, uninterrupted. Then, ``--kills`` times, the same command starts in
a fresh folder and gets SIGKILL at a moment drawn uniformly between the imports (2 s) and 90 % of the reference's wall time; ``--resume`` then
continues it (a kill before the run's run.json existed leaves nothing to resume: the command starts again). The
resumed run must match the reference exactly:

- search: genotype.json, alphas.jsonl, the weights in model.pt, and metrics.csv without its timing columns;
- train: the weights in model.pt and the test metrics in results.json;
- bench: results.csv without its timing columns.

No temporary file of a killed write may be left, and no run folder may stay locked (the lock file of a killed
run may stay: the kernel released its lock). Prints one table per
command and writes ``kill_resume.json`` in the output folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY_SEARCH = ["motifs-quick", "--model.channels", "4", "--model.layers", "2", "--model.nodes", "2",
               "--data.samples", "256", "--data.test_samples", "64", "--search.epochs", "4",
               "--search.warmup_epochs", "1", "--search.batch_size", "16", "--train.epochs", "4", "--quiet"]
TINY_BENCH = ["p3b5", "--quick", "--quiet", "--data.documents", "120", "--data.test_documents", "40",
              "--data.sequence_length", "24", "--data.vocab_size", "200", "--model.channels", "4",
              "--model.embedding_dim", "8", "--train.channels", "4", "--search.epochs", "2",
              "--search.warmup_epochs", "0", "--train.epochs", "2", "--bench.orders", "[first]",
              "--bench.random_genotypes", "1", "--bench.baseline_filters", "8", "--search.selection", "alpha"]
STARTUP = 2.0  # seconds: Python and torch imported, the run folder about to be made
TIMING = ("seconds", "seconds_per_step", "search seconds", "train seconds", "search s", "run")


def darts(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "darts", *arguments]


def command_line(command: str, runs: Path, genotype: Path) -> list[str]:
    if command == "search":
        return darts("search", *TINY_SEARCH, "--runs", str(runs))
    if command == "train":
        return darts("train", *TINY_SEARCH, "--genotype", str(genotype), "--runs", str(runs))
    return darts("bench", *TINY_BENCH, "--runs", str(runs))


def resume_line(command: str, run_dir: Path) -> list[str]:
    extra = ["p3b5"] if command == "bench" else []
    return darts(command, *extra, "--resume", str(run_dir), "--quiet")


def fingerprint(command: str, run_dir: Path) -> dict:
    """What must be identical between a resumed run and the reference."""
    import pandas as pd
    import torch

    if command == "bench":
        table = pd.read_csv(run_dir / "results.csv")
        return {"results": table.drop(columns=[c for c in TIMING if c in table.columns]).to_csv(index=False)}
    weights = torch.load(io.BytesIO((run_dir / "model.pt").read_bytes()), weights_only=True)
    found = {"model": {k: v.double().sum().item() for k, v in weights.items()},
             "model_bytes": {k: v.numpy().tobytes().hex()[:64] + str(v.shape) for k, v in weights.items()}}
    if command == "search":
        metrics = pd.read_csv(run_dir / "metrics.csv")
        found.update(genotype=(run_dir / "genotype.json").read_text(), alphas=(run_dir / "alphas.jsonl").read_text(),
                     metrics=metrics.drop(columns=[c for c in TIMING if c in metrics.columns]).to_csv(index=False))
    else:
        found["test"] = json.loads((run_dir / "results.json").read_text())["test"]
    return found


def only_run(runs: Path) -> Path | None:
    found = [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
    return found[0] if found else None


def held(lock: Path) -> bool:
    """Whether some process still holds a run folder's lock (the file of a killed holder is harmless)."""
    import fcntl

    with open(lock, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def leftovers(runs: Path) -> list[str]:
    """Temporary files of killed writes, and run folders still locked."""
    return [str(p) for p in runs.rglob("*") if p.name.endswith(".tmp") or (p.name == ".lock" and held(p))]


def run_command(arguments: list[str], environment: dict) -> float:
    start = time.perf_counter()
    subprocess.run(arguments, check=True, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def trial(command: str, folder: Path, genotype: Path, kill_at: float, environment: dict) -> dict:
    runs = folder / "runs"
    process = subprocess.Popen(command_line(command, runs, genotype), env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=kill_at)
        killed = False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = True
    run_dir = only_run(runs)
    if run_dir is not None and not (run_dir / "run.json").exists():  # made, but killed before the run began
        shutil.rmtree(run_dir)
        run_dir = None
    if run_dir is None:  # killed before the run began: nothing to resume, so start again
        run_command(command_line(command, runs, genotype), environment)
        run_dir, how = only_run(runs), "restarted"
    elif (run_dir / "results.json").exists():
        how = "killed after its results were written" if killed else "finished before the kill"
    else:
        run_command(resume_line(command, run_dir), environment)
        how = "resumed"
    return {"kill_at": round(kill_at, 2), "killed": killed, "how": how, "run_dir": run_dir,
            "leftovers": leftovers(runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="kills per command (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--commands", default="search,train,bench", help="which commands (default: all three)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs and kill_resume.json")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    out.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    draw = random.Random(args.seed)
    genotype = out / "genotype.json"
    subprocess.run(darts("genotype", "show", "DARTS_V2", "--json"), check=True, env=environment,
                   stdout=genotype.open("w"))
    published = json.loads(genotype.read_text())
    genotype.write_text(json.dumps({**published, "family": "conv1d"}))  # DARTS_V2's cells on 1D motifs
    report = {}
    for command in args.commands.split(","):
        reference_runs = out / command / "reference"
        seconds = run_command(command_line(command, reference_runs, genotype), environment)
        expected = fingerprint(command, only_run(reference_runs))
        rows = []
        for index in range(args.kills):
            kill_at = draw.uniform(STARTUP, 0.9 * seconds)  # from after the imports to near the end
            row = trial(command, out / command / f"kill-{index}", genotype, kill_at, environment)
            row["identical"] = fingerprint(command, row.pop("run_dir")) == expected
            rows.append(row)
            print(f"{command} kill {index + 1}/{args.kills} at {kill_at:5.1f} s of {seconds:.1f}: {row['how']}, "
                  f"{'identical' if row['identical'] else 'DIFFERENT'}"
                  + (f", left {row['leftovers']}" if row["leftovers"] else ""), flush=True)
        report[command] = {"reference_seconds": round(seconds, 1), "trials": rows,
                           "identical": sum(r["identical"] for r in rows),
                           "resumed": sum(r["how"] == "resumed" for r in rows),
                           "leftovers": sum(bool(r["leftovers"]) for r in rows)}
    print("\n| command | kills | resumed | restarted or finished | identical to the reference | files left |")
    print("|---|---|---|---|---|---|")
    for command, figures in report.items():
        kills = len(figures["trials"])
        print(f"| {command} | {kills} | {figures['resumed']} | {kills - figures['resumed']} | "
              f"{figures['identical']}/{kills} | {figures['leftovers']} |")
    (out / "kill_resume.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {out / 'kill_resume.json'}")
    return 0 if all(f["identical"] == len(f["trials"]) and not f["leftovers"] for f in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
