"""What you see when a primitive of yours is wrong: a clear error when the search space is built.

    python examples/advanced/broken_primitive.py

darts builds every primitive of a space on a probe input at stride 1 and 2 before anything trains, and
names the primitive and the shapes when one does not return what its family needs: the same channels,
and the spatial size divided by the stride.
"""

from __future__ import annotations

from torch import nn

from darts import SearchNetwork, register_primitive
from darts.plugins import isolated_plugins


def forgets_padding(channels: int, stride: int) -> nn.Module:
    """a 3-wide convolution without padding: its output is 2 shorter than its input"""
    return nn.Conv1d(channels, channels, 3, stride=stride)


def doubles_channels_when_reducing(channels: int, stride: int) -> nn.Module:
    """a convolution that widens when it reduces (stride 2), as in a ResNet block, not a DARTS edge"""
    return nn.Conv1d(channels, channels * stride, 3, stride=stride, padding=1)


def main() -> list[str]:
    messages = []
    for factory in (forgets_padding, doubles_channels_when_reducing):
        with isolated_plugins():  # a throw-away registry: the broken primitives never reach the real one
            register_primitive("conv1d", factory.__name__)(factory)
            try:
                SearchNetwork("conv1d", in_channels=4, channels=8, num_classes=3, layers=3, nodes=2,
                              primitives=["skip_connect", factory.__name__])
            except ValueError as error:
                messages.append(str(error))
                print(f"{factory.__name__}: {factory.__doc__}\n  -> ValueError: {error}\n")
    return messages


if __name__ == "__main__":
    main()
