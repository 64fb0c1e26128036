"""Selection by perturbation (DARTS-PT: Wang et al., "Rethinking architecture selection in differentiable
NAS", ICLR 2021): the genotype chosen from what each primitive and edge does for the trained supernet.

The paper's argmax of alpha favours parameter-free primitives: early in the search they help most, and the
alphas remember it. Here, edge after edge (in a random order), each primitive is removed in turn (its mixing
weight set to zero) and the supernet's validation score measured; the edge keeps the primitive whose removal
hurts most, and from then on uses it alone. After every decision the weights are fine-tuned briefly. Then,
node after node, each incoming edge is removed in turn, and the node keeps the ``k`` edges whose removal
hurts most. The alphas only fill the edges not yet decided.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from darts.genotype import NONE, Genotype, derive_cell

if TYPE_CHECKING:
    from darts.strategy import SelectionContext


@dataclass
class Decision:
    """One decision: which cell type and edge (or node), the candidates' scores without each, the choice."""

    cell: str
    what: str  # "primitive" (edge) or "edges" (node)
    where: int  # edge index, or node index
    scores: dict[str, float]  # candidate -> supernet score with that candidate removed
    chosen: list[str]
    base: float  # the supernet's score with every candidate present


@dataclass
class Selection:
    """The decisions of a selection and the genotype they give."""

    genotype: Genotype
    decisions: list[Decision] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"genotype": self.genotype.to_dict(), "decisions": [d.__dict__ for d in self.decisions]}


def node_edges(edges: int, inputs: int) -> list[range]:
    """The edge indices entering each intermediate node of a cell with ``inputs`` inputs and ``edges`` edges."""
    spans, start, node = [], 0, 0
    while start < edges:
        spans.append(range(start, start + inputs + node))
        start += inputs + node
        node += 1
    if start != edges:
        raise ValueError(f"{edges} edges do not form whole nodes with {inputs} cell inputs")
    return spans


def select_by_perturbation(network, score: Callable[[], float], fine_tune: Callable[[], None],
                           k: int | None = None, seed: int = 0,
                           report: Callable[[Decision], None] | None = None) -> Selection:
    """Choose a genotype of ``network`` (a supernet) by perturbation.

    ``score()`` measures the supernet as it is now (higher is better: validation accuracy, or minus a loss);
    ``fine_tune()`` trains its weights a little after each decision; ``k`` edges per node are kept (2 for
    feedforward cells, 1 for recurrent ones by default). The network's mixing weights are fixed while it
    runs and released at the end, even on an error."""
    names = list(network.primitive_names)
    candidates = [i for i, name in enumerate(names) if name != NONE]
    inputs = 1 if network.family.cell == "recurrent" else 2
    k = k if k is not None else (1 if network.family.cell == "recurrent" else 2)
    with torch.no_grad():
        weights = {cell: w.detach().clone() for cell, w in network.arch_weights("derive").items()}
    decisions: list[Decision] = []
    used = [cell for cell in getattr(network, "searched_cell_types", weights) if cell in weights]
    order = [(cell, edge) for cell in used for edge in range(weights[cell].shape[0])]
    random.Random(seed).shuffle(order)
    try:
        network.fixed_weights = weights
        for cell, edge in order:  # the primitive of every edge
            base = score()
            scores = {}
            for op in candidates:
                kept = weights[cell][edge, op].item()
                weights[cell][edge, op] = 0.0
                scores[names[op]] = score()
                weights[cell][edge, op] = kept
            chosen = min(candidates, key=lambda op: scores[names[op]])  # its removal hurts most
            weights[cell][edge] = 0.0
            weights[cell][edge, chosen] = 1.0
            decisions.append(Decision(cell, "primitive", edge, scores, [names[chosen]], base))
            if report:
                report(decisions[-1])
            fine_tune()
        strengths = {cell: torch.zeros(w.shape[0]) for cell, w in weights.items()}
        for cell in used:  # the edges of every node
            w = weights[cell]
            for node, span in enumerate(node_edges(w.shape[0], inputs)):
                if len(span) <= k:
                    strengths[cell][list(span)] = 1.0
                    continue
                base = score()
                scores = {}
                for edge in span:
                    kept = w[edge].clone()
                    w[edge] = 0.0
                    scores[f"input {edge - span.start}"] = score()
                    w[edge] = kept
                ranked = sorted(span, key=lambda e: scores[f"input {e - span.start}"])[:k]
                for rank, edge in enumerate(ranked):
                    strengths[cell][edge] = 1.0 + k - rank  # derive_cell keeps the strongest k
                dropped = [e for e in span if e not in ranked]
                w[dropped] = 0.0
                decisions.append(Decision(cell, "edges", node, scores,
                                          [f"input {e - span.start}" for e in ranked], base))
                if report:
                    report(decisions[-1])
                fine_tune()
    finally:
        network.fixed_weights = None
    cells = {}
    for cell, w in weights.items():
        if cell not in used:  # a cell type no cell of the network uses: its alphas, as they are
            cells[cell] = derive_cell(w, names, inputs, k, network.cell_concat[cell])
            continue
        onehot = torch.zeros_like(w)
        onehot[torch.arange(w.shape[0]), w.argmax(dim=1)] = 1.0
        cells[cell] = derive_cell(onehot * strengths[cell].unsqueeze(1), names, inputs, k, network.cell_concat[cell])
    return Selection(Genotype(network.family.name, tuple(names), cells), decisions)


def select_with_trainer(trainer, held_out, s, seed: int, log=None, run_dir=None) -> Genotype:
    """:func:`select_by_perturbation` on a search's trained supernet (``trainer.model``): scored on
    ``s.selection_examples`` examples of ``held_out``, fine-tuned for ``s.selection_epochs`` of the trainer's
    weight split after each decision (``s``: the ``search`` configuration). Logs each decision to ``log`` (a
    :class:`~darts.runs.RunLog`) and writes ``selection.json`` into ``run_dir``."""
    from torch.utils.data import Subset

    from darts import distributed
    from darts.io import atomic_write_json
    from darts.training.objective import higher_is_better
    from darts.training.trainer import call_model, make_loader, stream_seed

    order = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(seed)).tolist()
    probe = Subset(held_out, order[:s.selection_examples])
    sign = 1.0 if higher_is_better(trainer.monitor) else -1.0
    model, optimizer, loss_fn = trainer.model, trainer.optimizer, trainer.loss_fn
    steps = round(s.selection_epochs * len(trainer.train_batches()))
    tunings = [0]

    def score() -> float:
        return sign * trainer.evaluate(probe, "val_", batch_size=max(trainer.batch_size, 256))[trainer.monitor]

    def fine_tune() -> None:
        tunings[0] += 1
        done = 0
        model.train()
        while done < steps:
            loader = make_loader(trainer.train_data, trainer.batch_size, stream_seed(seed, 10**6 + tunings[0], 0, done),
                                 shuffle=True)
            for inputs, targets in map(trainer.to_device, loader):
                optimizer.zero_grad(set_to_none=True)
                with trainer.precision.autocast():
                    loss = loss_fn(call_model(trainer.forward_model, inputs), targets)  # DDP under torchrun
                scaler = trainer.scaler
                (scaler.scale(loss) if scaler is not None else loss).backward()
                if scaler is not None:
                    scaler.unscale_(optimizer)
                if s.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                done += 1
                if done >= steps:
                    break
        optimizer.zero_grad(set_to_none=True)

    def report(decision: Decision) -> None:
        if log is None:
            return
        ranked = sorted(decision.scores.items(), key=lambda item: item[1])
        where = "edge" if decision.what == "primitive" else "node"
        log.event("selection", f"  selection: {decision.cell} {where} {decision.where}: {', '.join(decision.chosen)} "
                  f"({trainer.monitor} {sign * decision.base:.4f}; without it {sign * ranked[0][1]:.4f})",
                  **decision.__dict__)

    start = time.perf_counter()
    if log is not None:
        log.event("selection", f"selection by perturbation: scored on {len(probe)} held-out examples, {steps} "
                  "fine-tuning steps after each decision")
    selection = select_by_perturbation(model, score, fine_tune, seed=seed, report=report)
    if run_dir is not None and distributed.is_main():
        atomic_write_json(Path(run_dir) / "selection.json",
                          {**selection.to_dict(), "seconds": round(time.perf_counter() - start, 2)})
    return selection.genotype


def select_by_alpha(context: "SelectionContext") -> Genotype:
    """The paper's rule on the strategy's derived weights: the tracked best genotype when the search asked
    for it (``search.genotype: best``), else the last epoch's."""
    search = context.search
    if search is not None and getattr(search, "genotype", "final") == "best" and context.best:
        return Genotype.from_dict(context.best["genotype"])
    return context.network.genotype()


def select_by_perturbation_after_search(context: "SelectionContext") -> Genotype:
    """:func:`select_with_trainer` on a finished search."""
    return select_with_trainer(context.trainer, context.held_out, context.search, context.seed, context.log,
                               context.run_dir)
