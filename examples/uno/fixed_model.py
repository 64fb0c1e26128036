"""Assemble a fully connected model by hand from the ``linear`` family's primitives, and compare it with ridge.

Data: a generated Uno-like table (cell-line expression features and drug descriptors -> a response in [0, 1]
with non-linear structure and noise). Run: ``python examples/uno/fixed_model.py [--epochs 30]``.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from torch import nn

from darts import get_registry


def uno_like(samples: int, cell_features: int = 942, drug_features: int = 64, seed: int = 0):
    """Expression and drug features with a response that depends on both, non-linearly, plus noise."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randn(samples, cell_features, generator=g)
    drugs = torch.randn(samples, drug_features, generator=g)
    u = cells[:, :20] @ torch.randn(20, 4, generator=g) / 4
    v = drugs[:, :10] @ torch.randn(10, 4, generator=g) / 3
    response = torch.sigmoid(u.sum(1) + v.sum(1) + 0.5 * (u * v).sum(1) - 0.5 * v[:, 1].abs())
    response = response + 0.05 * torch.randn(samples, generator=g)
    return torch.cat([cells, drugs], dim=1), response


class HandBuilt(nn.Module):
    """input -> stem -> [linear, bottleneck, skip] blocks, summed as a DARTS node would -> response."""

    def __init__(self, features: int, width: int = 64) -> None:
        super().__init__()
        registry, family = get_registry(), get_registry().family("linear")
        self.stem = family.stem(features, width)
        self.blocks = nn.ModuleList(registry.primitive("linear", name).build(width)
                                    for name in ("linear", "bottleneck", "linear_dropout"))
        self.skip = registry.primitive("linear", "skip_connect").build(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        node = sum(block(h) for block in self.blocks) + self.skip(h)
        return self.head(torch.relu(node)).squeeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument("--samples", type=int, default=3000, help="rows of generated data (default 3000)")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = uno_like(args.samples)
    split = int(0.8 * len(x))
    mean, std = x[:split].mean(0), x[:split].std(0) + 1e-6
    x = (x - mean) / std
    model = HandBuilt(x.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    for epoch in range(args.epochs):
        model.train()
        for batch in torch.randperm(split).split(64):
            optimizer.zero_grad()
            F.mse_loss(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        r2_model = r2_score(y[split:].numpy(), model(x[split:]).numpy())
    ridge = Ridge(alpha=10.0).fit(x[:split].numpy(), y[:split].numpy())
    r2_ridge = r2_score(y[split:].numpy(), ridge.predict(x[split:].numpy()))
    print(f"{'model':<28}{'test R2':>10}")
    print(f"{'hand-built from primitives':<28}{r2_model:>10.3f}")
    print(f"{'ridge (scikit-learn)':<28}{r2_ridge:>10.3f}")


if __name__ == "__main__":
    main()
