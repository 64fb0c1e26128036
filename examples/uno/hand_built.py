"""A fully connected model assembled by hand from the ``linear`` family's primitives.

The same building blocks a DARTS search mixes, wired by hand: the task's two-tower stem (cell and drug
features encoded apart), two nodes that sum primitives as a DARTS node sums its edges, and one head per
target. Registered as the baseline ``uno_hand_built``, so darts trains it exactly like a searched network.
"""

from __future__ import annotations

import torch
from torch import nn

from darts import get_registry
from darts.assemble import head_factory, register_baseline
from darts.tasks import TaskData


class HandBuilt(nn.Module):
    """stem -> node 1 = linear(s) + bottleneck(s); node 2 = linear_dropout(node 1) + skip_connect(s) -> heads."""

    def __init__(self, data: TaskData, width: int = 64) -> None:
        super().__init__()
        primitive = lambda name: get_registry().primitive("linear", name).build(width)  # noqa: E731
        self.stem = data.stem(width)
        self.node1 = nn.ModuleList([primitive("linear"), primitive("bottleneck")])
        self.node2 = nn.ModuleList([primitive("linear_dropout"), primitive("skip_connect")])
        self.head = head_factory(data)(2 * width)

    def forward(self, x: torch.Tensor):
        s = self.stem(x)
        n1 = self.node1[0](s) + self.node1[1](s)
        n2 = self.node2[0](n1) + self.node2[1](s)
        return self.head(torch.cat([n1, n2], dim=1))


register_baseline("uno_hand_built", lambda config, data: HandBuilt(data, config.train.channels or config.model.channels))
