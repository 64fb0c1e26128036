"""Search diagnostics and the verdict: did the alphas decide, what did they pick, did the genotype settle?

After every search epoch, per edge of every cell type: the top softmax(alpha) weight, its margin over the
second, and the entropy of the edge's mixing weights. Per epoch: how many edges are decisive (a top weight of
at least :data:`DECISIVE` times uniform), the share of parameter-free primitives (poolings, identity) in the
derived genotype, and whether that genotype changed since the last epoch. At the end of a search the verdict
reads these figures: ``decisive``, or ``inconclusive`` with the reasons and what to change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import torch

from darts.genotype import NONE, Genotype

#: an edge is decisive when its top weight is at least this many times the uniform weight 1/n
DECISIVE = 2.0
#: the verdict asks at least this share of the edges to be decisive
DECISIVE_SHARE = 0.5
#: a genotype whose edges are at least this share parameter-free has collapsed onto them
PARAMETER_FREE_TAKEOVER = 0.75


def edge_statistics(weights: torch.Tensor) -> dict[str, list[float]]:
    """Per row of mixing weights (edges x primitives, each row summing to 1): top weight, its margin over the
    second, and the entropy (nats)."""
    weights = weights.detach().double().cpu()
    ordered = weights.sort(dim=-1, descending=True).values
    second = ordered[:, 1] if weights.shape[-1] > 1 else torch.zeros(len(weights), dtype=weights.dtype)
    entropy = -(weights * weights.clamp_min(1e-300).log()).sum(-1)
    return {"top": ordered[:, 0].tolist(), "margin": (ordered[:, 0] - second).tolist(), "entropy": entropy.tolist()}


def parameter_free(primitives: Iterable[Any]) -> frozenset[str]:
    """The names of the primitives (``darts.family.Primitive``) that have no weights at stride 1: poolings,
    identity, ``none``. A primitive that cannot be built on a small probe counts as one with weights."""
    names = set()
    for primitive in primitives:
        try:
            module = primitive.build(4, 1, affine=False)
        except Exception:  # noqa: BLE001 - a probe only; the network checks primitives properly
            continue
        if not any(True for _ in module.parameters()):
            names.add(primitive.name)
    return frozenset(names)


def genotype_changes(previous: Genotype | None, current: Genotype) -> int:
    """How many (primitive, input) genes differ between two genotypes of one space (0 without a previous one)."""
    if previous is None:
        return 0
    changed = 0
    for name, cell in current.cells.items():
        before = previous.cells.get(name)
        old = before.genes if before is not None else []
        changed += sum(1 for i, gene in enumerate(cell.genes) if i >= len(old) or tuple(old[i]) != tuple(gene))
    return changed


def epoch_diagnostics(weights: Mapping[str, torch.Tensor], genotype: Genotype, previous: Genotype | None,
                      free: frozenset[str]) -> dict[str, Any]:
    """The figures of one epoch: ``edges`` (per cell type, per edge) and the summary scalars.

    ``weights``: softmax(alpha) per cell type; ``free``: the parameter-free primitives of the space."""
    edges = {name: edge_statistics(w) for name, w in weights.items()}
    tops = [t for stats in edges.values() for t in stats["top"]]
    margins = [m for stats in edges.values() for m in stats["margin"]]
    n = next(iter(weights.values())).shape[-1]
    uniform = 1.0 / n
    entropies = [e / math.log(n) if n > 1 else 0.0 for stats in edges.values() for e in stats["entropy"]]
    genotype = Genotype(genotype.family, genotype.primitives, {n: c for n, c in genotype.cells.items() if n in weights})
    previous = None if previous is None else Genotype(previous.family, previous.primitives,
                                                      {n: c for n, c in previous.cells.items() if n in weights})
    changes = genotype_changes(previous, genotype)
    return {
        "edges": edges,
        "alpha_top_median": _median(tops),
        "alpha_top_min": min(tops),
        "alpha_top_max": max(tops),
        "alpha_margin_median": _median(margins),
        "alpha_entropy": sum(entropies) / len(entropies),
        "decisive_edges": sum(1 for t in tops if t >= DECISIVE * uniform) / len(tops),
        "parameter_free_share": free_share(genotype, free),
        "genotype_changes": changes,
        "genotype_changed": bool(changes),
        "uniform": uniform,
        "edge_count": len(tops),
    }


#: the per-epoch scalars that go into metrics.csv
SCALARS = ("alpha_top_median", "alpha_top_min", "alpha_top_max", "alpha_margin_median", "alpha_entropy",
           "decisive_edges", "parameter_free_share", "genotype_changes")


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class Verdict:
    """What a search says about itself: ``decisive``, or ``inconclusive`` with reasons and advice."""

    decisive: bool
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "decisive" if self.decisive else "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.label, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Verdict":
        return cls(bool(data["decisive"]), list(data.get("reasons", [])), list(data.get("advice", [])))

    def __str__(self) -> str:
        if self.decisive:
            return "search verdict: decisive" + (f" ({self.reasons[0]})" if self.reasons else "")
        lines = ["search verdict: inconclusive"]
        lines += [f"  - {reason}" for reason in self.reasons]
        lines += [f"  try: {advice}" for advice in self.advice]
        return "\n".join(lines)


def verdict(records: Sequence[Mapping[str, Any]], search: Any, space_is_mixed: bool = True,
            chosen_free_share: float | None = None) -> Verdict:
    """The verdict on a search from its per-epoch diagnostics (the last epoch decides).

    ``search``: the run's ``search`` configuration, whose keys the advice names with their values;
    ``space_is_mixed``: the space has primitives with and without weights, so a collapse onto the
    parameter-free ones can happen (not so in a recurrent cell's space of activations);
    ``chosen_free_share``: the parameter-free share of the genotype chosen otherwise than by alpha (by
    perturbation), which then decides about a collapse."""
    if not records:
        return Verdict(False, ["the search recorded no epoch"], [f"more search.epochs (now {search.epochs})"])
    last = records[-1]
    reasons, advice = [], []
    decisive_share, uniform = last["decisive_edges"], last["uniform"]
    if decisive_share < DECISIVE_SHARE:
        reasons.append(f"alphas near uniform: {round(decisive_share * last['edge_count'])} of {last['edge_count']} "
                       f"edges have a top weight of at least {DECISIVE:g}x uniform ({DECISIVE * uniform:.3f}); "
                       f"median top weight {last['alpha_top_median']:.3f} against {uniform:.3f}")
        advice.append(f"more or larger alpha steps: search.arch_lr (now {search.arch_lr:g}), search.epochs "
                      f"(now {search.epochs}), a smaller search.batch_size (now {search.batch_size})")
    free = last["parameter_free_share"] if chosen_free_share is None else chosen_free_share
    if space_is_mixed and free >= PARAMETER_FREE_TAKEOVER:
        reasons.append(f"parameter-free primitives take {free:.0%} of the genotype's edges "
                       "(DARTS' collapse onto poolings and skip connections)")
        advice.append(f"a longer weight warm-up, search.warmup_epochs (now {search.warmup_epochs})"
                      + (", or search.selection perturbation" if search.selection != "perturbation" else ""))
        if getattr(search, "strategy", "darts") in ("darts", "pc-darts"):
            advice.append("a strategy made against this collapse: search.strategy darts-minus, fair-darts or sdarts")
    searched = [r for r in records if r.get("arch_steps", 1)]
    if len(searched) >= 2 and last["genotype_changed"]:
        changes = last["genotype_changes"]
        reasons.append(f"the genotype still changed in the last epoch ({changes} gene{'s' if changes != 1 else ''})")
        advice.append(f"more search.epochs (now {search.epochs})")
    if reasons:
        return Verdict(False, reasons, list(dict.fromkeys(advice)))
    return Verdict(True, [f"{decisive_share:.0%} of the edges decisive, median top weight "
                          f"{last['alpha_top_median']:.3f} against uniform {uniform:.3f}; the genotype settled"])


def free_share(genotype: Genotype, free: frozenset[str]) -> float:
    """The share of a genotype's (primitive, input) genes whose primitive is parameter-free."""
    genes = [gene for cell in genotype.cells.values() for gene in cell.genes]
    return sum(1 for primitive, _ in genes if primitive in free) / len(genes) if genes else 0.0


def is_mixed(primitives: Sequence[str], free: frozenset[str]) -> bool:
    """Whether a space holds primitives with weights and parameter-free ones besides ``none``."""
    usable = [p for p in primitives if p != NONE]
    return any(p in free for p in usable) and any(p not in free for p in usable)
