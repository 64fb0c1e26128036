"""The cell diagram: no edge runs through a state's box, and states are numbered as ``darts genotype show``."""

import numpy as np
import pytest

from darts.genotype import CellGenotype, Genotype
from darts.plugins import load_genotype
from darts.plots import genotype_figure


def _boxes_and_arcs(figure):
    """Per axis: the states' boxes (label -> display bbox) and the edges' curves (display points)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    panels = []
    for axis in figure.axes:
        boxes = {text.get_text(): text.get_bbox_patch().get_window_extent(renderer)
                 for text in axis.texts if text.get_bbox_patch() is not None and text.get_zorder() == 3}
        arcs = [axis.transData.transform(np.column_stack(line.get_data())) for line in axis.lines
                if line.get_color() == "black"]
        labels = [text for text in axis.texts if text.get_zorder() == 2]
        panels.append((boxes, arcs, labels, renderer))
    return panels


def _inside(box, points, margin=1.0):
    return (points[:, 0] > box.x0 + margin) & (points[:, 0] < box.x1 - margin) & \
           (points[:, 1] > box.y0 + margin) & (points[:, 1] < box.y1 - margin)


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2", "DARTS_RNN_V2"])
def test_edges_never_cross_a_state_box_and_labels_do_not_collide(name):
    genotype = load_genotype(name)
    figure = genotype_figure(genotype)
    for (boxes, arcs, labels, renderer), cell in zip(_boxes_and_arcs(figure), genotype.cells.values()):
        assert len(arcs) == sum(len(node) for node in cell.nodes)
        for arc in arcs:
            for box in boxes.values():
                assert not _inside(box, arc).any()
        extents = [label.get_bbox_patch().get_window_extent(renderer) for label in labels]
        for i, first in enumerate(extents):
            for second in extents[i + 1:]:
                assert not first.overlaps(second), "two primitive labels overlap"


def test_states_are_numbered_as_the_text_numbers_them():
    genotype = load_genotype("DARTS_V2")
    figure = genotype_figure(genotype)
    boxes, *_ = _boxes_and_arcs(figure)[0]
    numbers = sorted(label.split(":")[0] for label in boxes if label[0].isdigit())
    assert numbers == ["0", "1", "2", "3", "4", "5"]  # str(genotype): "state 2 = ... (state 0)"
    assert "state 5 = skip_connect(state 0) + dil_conv_3(state 2)" in str(genotype)


def test_the_skip_from_the_first_input_ends_at_its_node():
    """DARTS_V2's normal state 4 takes a skip from state 0: its arc starts at box 0 and ends at box 4, not 2."""
    cell = CellGenotype(((("sep_conv_3", 1), ("skip_connect", 0)),), (2,))
    genotype = Genotype("conv1d", ("skip_connect", "sep_conv_3"), {"normal": cell, "reduce": cell})
    figure = genotype_figure(genotype)
    boxes, arcs, *_ = _boxes_and_arcs(figure)[0]
    second = arcs[1]  # the node's second gene: skip_connect from state 0, below the row
    def nearest(point):
        return min(boxes, key=lambda label: np.hypot(*(np.array(point) - boxes[label].get_points().mean(0))))

    assert (nearest(second[0]), nearest(second[-1])) == ("0: $c_{k-2}$", "2")
    assert second[:, 1].max() <= boxes["2"].y0 + 1  # below the row, over box 1 (not through it)
