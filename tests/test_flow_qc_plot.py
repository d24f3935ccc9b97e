"""Gate QC plots: every gate type draws, files are deterministic, nothing private is drawn."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest
from conftest import reference_path, shared_path

from ckpk.flow.fcs import read_fcs
from ckpk.flow.gating import gate_events
from ckpk.flow.qc_plot import plot_gates
from ckpk.flow.strategy import load_strategy

DATA = Path(__file__).parent / "data" / "flow"


@pytest.mark.shared
def test_100715_plot_is_written_and_deterministic(tmp_path):
    sample, _ = read_fcs(shared_path("data", "fcs", "flowkit", "100715.fcs"))
    strategy = load_strategy(DATA / "100715_cart.xml")
    outcome = gate_events(sample, strategy)
    first = plot_gates(sample, strategy, tmp_path / "a" / "S01_D14.png", outcome=outcome)
    second = plot_gates(sample, strategy, tmp_path / "b.png")  # gates again itself
    assert first.read_bytes() == second.read_bytes()
    image = mpimg.imread(first)
    # 8 panels (7 gates + the quadrant gate) on a 4-column grid: 2 rows.
    assert image.shape[1] > image.shape[0] > 400


def test_every_gatingml_gate_type_draws(tmp_path):
    # Polygons, rectangles and open ranges, ellipses (2-D and 3-D), quadrants with three
    # dividers, ratio dimensions, Boolean gates and matrix-compensated dimensions.
    gate_ref = reference_path("data", "fcs", "flowkit", "gate_ref")
    sample, _ = read_fcs(gate_ref / "data1.fcs")
    names = (
        "gml_boolean_and2_gate.xml",
        "gml_quadrant2_gate.xml",
        "gml_ellipsoid3d_gate.xml",
        "gml_ratio_range1_gate.xml",
        "gml_matrix_transform_logicle_rect1_gate.xml",
        "gml_parent_quadrant_rect_gate.xml",
        "gml_poly3ns_gate.xml",
        "gml_rect2_gate.xml",
    )
    for name in names:
        path = plot_gates(sample, load_strategy(gate_ref / "gml" / name), tmp_path / f"{name}.png")
        assert path.stat().st_size > 5_000


def test_flowjo_strategy_draws(tmp_path):
    folder = reference_path("data", "fcs", "flowkit", "simple_diamond_example")
    sample, _ = read_fcs(folder / "test_data_diamond_01.fcs")
    strategy = load_strategy(folder / "simple_diamond_example_quad_gate.wsp")
    assert plot_gates(sample, strategy, tmp_path / "quad.png").stat().st_size > 5_000
