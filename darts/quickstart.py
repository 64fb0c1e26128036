"""A short, complete DARTS run on generated data: search a conv1d cell, derive the genotype, train it, test it.

This is the README's first command until the P3B5 benchmark lands. It writes, in a new run directory:
``config.json``, ``metrics.csv`` (one row per epoch), ``genotypes.jsonl`` (the genotype after each epoch),
``genotype.json`` (the final one) and ``results.json``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch.utils.data import DataLoader, Subset

from darts.architecture import Architecture
from darts.data import motif_sequences
from darts.io import atomic_write_json, atomic_write_text
from darts.runs import new_run_dir
from darts.search_space import Network, SearchNetwork


@dataclass
class QuickstartConfig:
    """Options of the quick search (defaults take about a minute on one CPU thread)."""

    epochs: int = 4
    train_epochs: int = 6
    order: str = "second"
    samples: int = 768
    test_samples: int = 512
    length: int = 48
    channels: int = 8
    layers: int = 3
    nodes: int = 3
    batch_size: int = 32
    seed: int = 0


def _accuracy(model: torch.nn.Module, loader: DataLoader) -> tuple[float, float]:
    model.eval()
    total, correct, loss = 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            total += len(y)
    model.train()
    return loss / total, correct / total


def run_quickstart(config: QuickstartConfig, runs_root: str | Path = "runs", console: Console | None = None) -> Path:
    """Run the quick search and return its run directory."""
    console = console or Console()
    torch.manual_seed(config.seed)
    run_dir = new_run_dir(runs_root, "quickstart")
    atomic_write_json(run_dir / "config.json", asdict(config))
    data = motif_sequences(config.samples + config.test_samples, config.length, 4, 4, seed=config.seed)
    half = config.samples // 2  # the alpha step uses a held-out half of the training data, never the weight batches
    weight_split, alpha_split = Subset(data, range(half)), Subset(data, range(half, config.samples))
    test_split = Subset(data, range(config.samples, config.samples + config.test_samples))
    loader = lambda split, shuffle: DataLoader(split, config.batch_size, shuffle=shuffle, drop_last=shuffle)  # noqa: E731

    network = SearchNetwork("conv1d", in_channels=4, channels=config.channels, num_classes=4,
                            layers=config.layers, nodes=config.nodes)
    weights = torch.optim.SGD(network.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(weights, config.epochs, eta_min=0.001)
    architecture = Architecture(network, weights, F.cross_entropy, order=config.order)
    console.print(f"[bold]darts quickstart[/bold]: {config.order}-order search of a conv1d cell "
                  f"({sum(p.numel() for p in network.parameters()):,} weights) -> {run_dir}")

    rows, history = [], []
    train_loader, val_loader = loader(weight_split, True), loader(alpha_split, True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("search", total=config.epochs * len(train_loader))
        for epoch in range(1, config.epochs + 1):
            start, train_loss = time.perf_counter(), 0.0
            for (x, y), val_batch in zip(train_loader, val_loader):
                architecture.step((x, y), val_batch)
                weights.zero_grad()
                loss = F.cross_entropy(network(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
                weights.step()
                train_loss += float(loss.detach()) / len(train_loader)
                progress.advance(task)
            schedule.step()
            val_loss, val_accuracy = _accuracy(network, loader(alpha_split, False))
            genotype = network.genotype()
            history.append(json.dumps({"epoch": epoch, "genotype": genotype.to_dict()}))
            rows.append({"epoch": epoch, "train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4),
                         "val_accuracy": round(val_accuracy, 4),
                         "seconds": round(time.perf_counter() - start, 2)})
            progress.console.print(f"epoch {epoch}: " + ", ".join(f"{k} {v}" for k, v in rows[-1].items() if k != "epoch"))
            _write_csv(run_dir / "metrics.csv", rows)
            atomic_write_text(run_dir / "genotypes.jsonl", "\n".join(history) + "\n")

    genotype = network.genotype()
    genotype.save(run_dir / "genotype.json")
    console.print(str(genotype))

    # train the derived network from scratch on all the training data, then test it
    torch.manual_seed(config.seed)
    model = Network(genotype, in_channels=4, channels=config.channels, num_classes=4, layers=config.layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    full_loader = loader(Subset(data, range(config.samples)), True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("train derived network", total=config.train_epochs * len(full_loader))
        for _ in range(config.train_epochs):
            for x, y in full_loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                progress.advance(task)
    test_loss, test_accuracy = _accuracy(model, loader(test_split, False))
    labels = torch.stack([data[i][1] for i in range(config.samples, config.samples + config.test_samples)])
    majority = float(torch.bincount(labels).max()) / len(labels)
    results = {"test_loss": round(test_loss, 4), "test_accuracy": round(test_accuracy, 4),
               "majority_class_accuracy": round(majority, 4), "search_val_accuracy": rows[-1]["val_accuracy"],
               "parameters": sum(p.numel() for p in model.parameters())}
    atomic_write_json(run_dir / "results.json", results)

    table = Table(title="quickstart results")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else f"{value:.4f}")
    console.print(table)
    console.print(f"run directory: {run_dir}")
    return run_dir


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
