"""Search-space building blocks, generic over the tensor's shape and the primitives' family."""

from darts.search_space.cell import Cell, Node, discrete_cell, search_cell
from darts.search_space.mixed_op import MixedOp
from darts.search_space.network import Alphas, CellNetwork, Network, SearchNetwork, Supernet
from darts.search_space.recurrent import (RecurrentCell, RecurrentClassifier, RecurrentDiscreteCell,
                                          RecurrentNetwork, RecurrentSearchCell, RecurrentSearchNetwork)
from darts.search_space.zero import Zero

__all__ = ["Alphas", "Cell", "CellNetwork", "MixedOp", "Network", "Node", "RecurrentCell", "RecurrentClassifier",
           "RecurrentDiscreteCell", "RecurrentNetwork", "RecurrentSearchCell", "RecurrentSearchNetwork",
           "SearchNetwork", "Supernet", "Zero", "discrete_cell", "search_cell"]
