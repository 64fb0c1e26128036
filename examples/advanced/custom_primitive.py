"""Register your own primitive in-process and search a conv1d space that mixes it with built-in ones.

Run: ``python examples/advanced/custom_primitive.py [--epochs 3]``.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from darts import Architecture, SearchNetwork, register_primitive
from darts.data import motif_sequences


class GatedConv(nn.Module):
    """tanh(conv(x)) * sigmoid(conv'(x)), then BatchNorm: a WaveNet-style gated convolution."""

    def __init__(self, channels: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return self.bn(a.tanh() * b.sigmoid())


@register_primitive("conv1d", "gated_conv_3")
def gated_conv_3(channels: int, stride: int, affine: bool = True) -> nn.Module:
    """gated 3-wide convolution"""
    return GatedConv(channels, stride, affine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="search epochs (default 3)")
    parser.add_argument("--samples", type=int, default=512, help="training sequences (default 512)")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = motif_sequences(args.samples, length=32, channels=4, num_classes=4)
    half = args.samples // 2
    train = DataLoader(Subset(data, range(half)), 32, shuffle=True, drop_last=True)
    val = DataLoader(Subset(data, range(half, args.samples)), 32, shuffle=True, drop_last=True)
    primitives = ["none", "skip_connect", "max_pool_3", "sep_conv_3", "gated_conv_3"]
    network = SearchNetwork("conv1d", in_channels=4, channels=8, num_classes=4, layers=3, nodes=2,
                            primitives=primitives)
    weights = torch.optim.SGD(network.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    architecture = Architecture(network, weights, F.cross_entropy, order="first")
    for epoch in range(args.epochs):
        val_losses = []
        for (x, y), val_batch in zip(train, val):
            val_losses.append(architecture.step((x, y), val_batch)["val_loss"])
            weights.zero_grad()
            F.cross_entropy(network(x), y).backward()
            weights.step()
        print(f"epoch {epoch + 1}: mean val loss of the alpha steps {sum(val_losses) / len(val_losses):.3f}")
    mean_weight = network.arch_weights()["normal"].mean(0)
    print("mean mixing weight per primitive (normal cell):")
    for name, weight in zip(network.primitive_names, mean_weight.tolist()):
        print(f"  {name:<14}{weight:.5f}")
    print(network.genotype())


if __name__ == "__main__":
    main()
