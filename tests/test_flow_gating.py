"""Gating through ckpk against references made elsewhere.

- GatingML 2.0 compliance suite (ISAC / FlowKit gate_ref): per-event truth for every gate.
- FlowKit's own engine on the same file and strategy, read by FlowKit itself.
- FlowJo workspaces: FlowKit's Workspace and the counts FlowKit's test suite asserts.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import flowkit as fk
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DIR, shared_path

from ckpk.errors import InputError
from ckpk.flow.fcs import read_fcs
from ckpk.flow.gating import GATE_COUNT_COLUMNS, gate_events, gate_files, gate_sample
from ckpk.flow.strategy import load_strategy
from ckpk.tables import read_tsv, write_tsv

DATA = Path(__file__).parent / "data" / "flow"
CART = DATA / "100715_cart.xml"

# gate_ref truth files are named after the gate, except one (FlowKit gatingml_tests.py).
TRUTH_NAME = {("gml_parent_quadrant_rect_gate.xml", "ParRectangle1"): "ParQuadRect"}
# Schema-invalid on purpose (an unknown <sample> element): must be refused, not gated.
INVALID_GML = {"gml_range_gate_attr_testing.xml"}


def _gate_ref() -> Path:
    return shared_path("data", "fcs", "flowkit", "gate_ref")


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    truth = {}
    for path in sorted((_gate_ref() / "truth").glob("Results_*.txt")):
        name = re.match(r"Results_(.+)\.txt$", path.name).group(1)
        truth[name] = pd.read_csv(path, header=None, dtype="bool").squeeze().to_numpy()
    return truth


def _gml_files() -> list[str]:
    """Names of the suite's GatingML files (collected before tests run; a placeholder
    when ../shared is absent, so the test is then skipped by shared_path)."""
    root = SHARED_DIR / "data" / "fcs" / "flowkit" / "gate_ref" / "gml"
    return sorted(p.name for p in root.glob("*.xml")) if root.is_dir() else ["(absent)"]


@pytest.fixture(scope="module")
def data1():
    sample, _ = read_fcs(_gate_ref() / "data1.fcs")
    return sample


@pytest.mark.shared
@pytest.mark.parametrize("gml", _gml_files())
def test_gatingml_compliance_suite(gml, truth, data1):
    path = _gate_ref() / "gml" / gml
    if gml in INVALID_GML:
        with pytest.raises(InputError):
            load_strategy(path)
        return
    outcome = gate_events(data1, load_strategy(path))
    compared = 0
    for gate_path, member in outcome.membership.items():
        name = gate_path.rsplit("/", 1)[-1]
        name = TRUTH_NAME.get((gml, name), name)
        if name not in truth:
            continue
        np.testing.assert_array_equal(member, truth[name], err_msg=f"{gml}: {gate_path}")
        row = outcome.counts[outcome.counts["gate_path"] == gate_path]
        assert int(row["count"].iloc[0]) == int(truth[name].sum())
        compared += 1
    if gml != "gml_ellipse2_gate.xml":  # the one file without a truth table
        assert compared >= 1


@pytest.mark.shared
def test_100715_counts_equal_flowkit():
    fcs = shared_path("data", "fcs", "flowkit", "100715.fcs")
    # Reference: FlowKit alone, reading the file itself (not through ckpk's reader).
    reference = fk.parse_gating_xml(str(CART)).gate_sample(fk.Sample(str(fcs))).report
    expected = {}
    for rec in reference.itertuples():
        parts = (
            *rec.gate_path,
            *([rec.quadrant_parent] if rec.quadrant_parent else []),
            rec.gate_name,
        )
        expected["/" + "/".join(parts)] = int(rec.count)

    sample, _ = read_fcs(fcs)
    counts = gate_sample(sample, load_strategy(CART))
    assert list(counts.columns) == GATE_COUNT_COLUMNS
    assert dict(zip(counts["gate_path"], counts["count"], strict=True)) == expected
    assert (counts["compensation"] == "file").all()
    assert (counts["events"] == 65016).all()
    # Percent of parent from the counts themselves.
    for row in counts.itertuples():
        parent = 65016 if row.parent == "/root" else expected[row.parent]
        assert row.parent_count == parent
        assert row.percent_parent == pytest.approx(100.0 * row.count / parent, rel=1e-12)


@pytest.mark.shared
def test_supplied_matrix_replaces_the_files_spillover(tmp_path):
    fcs = shared_path("data", "fcs", "flowkit", "100715.fcs")
    strategy = load_strategy(CART)
    sample, _ = read_fcs(fcs)
    by_file = gate_sample(sample, strategy)
    detectors = [sample.pnn_labels[i] for i in sample.fluoro_indices]
    spill = fk.Matrix(sample.metadata["spill"], detectors)
    supplied = gate_sample(sample, strategy, comp=spill)
    assert (supplied["compensation"] == "supplied").all()
    assert supplied["count"].tolist() == by_file["count"].tolist()
    # An identity matrix means "no compensation": same counts as an uncompensated strategy.
    identity = fk.Matrix(np.eye(len(detectors)), detectors)
    uncompensated = tmp_path / "uncompensated.xml"
    uncompensated.write_text(
        CART.read_text().replace('compensation-ref="FCS"', 'compensation-ref="uncompensated"')
    )
    plain = gate_sample(sample, load_strategy(uncompensated))
    assert (plain["compensation"] == "none").all()
    assert gate_sample(sample, strategy, comp=identity)["count"].tolist() == plain["count"].tolist()
    assert sample.metadata["spill"]  # the file's own matrix is left in place


# FlowJo workspaces: counts asserted in FlowKit's tests/workspace_tests.py.
WSP_EXPECTED = {
    "simple_diamond_example_quad_gate.wsp": {
        "Q1: channel_A- , channel_B+": 49671,
        "Q2: channel_A+ , channel_B+": 50596,
        "Q3: channel_A+ , channel_B-": 50330,
        "Q4: channel_A- , channel_B-": 49403,
    },
    "test_data_diamond_biex_rect.wsp": {"upper_right": 50605},
    "test_data_diamond_asinh_rect.wsp": {"upper_right": 50559},
    "single_ellipse_51_events.wsp": {"ellipse1": 51},
    "simple_poly_and_rect.wsp": None,
    "simple_poly_and_rect_v2_poly50.wsp": None,
}


@pytest.mark.shared
@pytest.mark.parametrize("wsp_name", sorted(WSP_EXPECTED))
def test_flowjo_workspace_counts_equal_flowkit_workspace(wsp_name):
    root = shared_path("data", "fcs", "flowkit")
    wsp = next(root.glob(f"simple_*/{wsp_name}"))
    fcs = sorted(wsp.parent.glob("*.fcs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = fk.Workspace(str(wsp), fcs_samples=[str(f) for f in fcs])
    workspace.analyze_samples(use_mp=False)
    report = workspace.get_analysis_report()
    reference = dict(zip(report["gate_name"], report["count"].astype(int), strict=True))

    counts, rejections = gate_files(fcs, load_strategy(wsp), labels=[f.name for f in fcs])
    assert rejections == []
    ours = dict(zip(counts["gate"], counts["count"], strict=True))
    assert ours == reference
    if WSP_EXPECTED[wsp_name] is not None:
        assert ours == WSP_EXPECTED[wsp_name]


@pytest.mark.shared
def test_gate_files_rejects_bad_files_and_keeps_going(tmp_path):
    strategy = load_strategy(CART)
    good = shared_path("data", "fcs", "flowkit", "100715.fcs")
    empty = tmp_path / "S01_D0.fcs"
    empty.write_bytes(b"")
    wrong_panel = shared_path("data", "fcs", "flowkit", "gate_ref", "data1.fcs")
    not_fcs = shared_path("data", "fcs", "flowkit", "comp_complete_example.csv")
    counts, rejections = gate_files(
        [good, empty, wrong_panel, not_fcs],
        strategy,
        labels=["S01_D14.fcs", "S01_D0.fcs", "S01_D28.fcs", "S01_D56.fcs"],
        plot_dir=tmp_path / "qc",
    )
    assert set(counts["file"]) == {"S01_D14.fcs"}
    reasons = dict(rejections)
    assert list(reasons) == ["S01_D0.fcs", "S01_D28.fcs", "S01_D56.fcs"]
    assert "empty" in reasons["S01_D0.fcs"]
    assert "missing channel(s)" in reasons["S01_D28.fcs"]
    assert "not an FCS file" in reasons["S01_D56.fcs"]
    assert (tmp_path / "qc" / "S01_D14.fcs.png").stat().st_size > 10_000

    # The table survives the SPEC writer/reader unchanged.
    write_tsv(counts, tmp_path / "gate_counts.tsv", columns=GATE_COUNT_COLUMNS)
    back = read_tsv(tmp_path / "gate_counts.tsv")
    assert back["count"].tolist() == counts["count"].tolist()
    assert back["gate_path"].tolist() == counts["gate_path"].tolist()


@pytest.mark.shared
def test_file_without_spillover_is_gated_uncompensated_with_note():
    # data1.fcs has no $SPILLOVER; GatingML 2.0 says "FCS" then means uncompensated.
    strategy = load_strategy(_gate_ref() / "gml" / "gml_poly1_gate.xml")
    sample, _ = read_fcs(_gate_ref() / "data1.fcs")
    outcome = gate_events(sample, strategy)
    assert outcome.compensation == "none"
    assert "no $SPILLOVER" in outcome.counts["notes"].iloc[0]


SMALL_STRATEGY = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="Cells">
    <gating:dimension gating:compensation-ref="uncompensated" gating:min="200">
      <data-type:fcs-dimension data-type:name="FSC-A" />
    </gating:dimension>
  </gating:RectangleGate>
  <gating:RectangleGate gating:id="CARpos" gating:parent_id="Cells">
    <gating:dimension gating:compensation-ref="FCS" gating:min="500">
      <data-type:fcs-dimension data-type:name="FL1-A" />
    </gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""


def test_private_keywords_reach_no_output(tmp_path):
    import flowio

    secrets = {
        "$SRC": "Jane Doe",
        "$COM": "MRN 00123456",
        "$OP": "Dr Who",
        "$CELLS": "PBMC JD-1975",
        "$FIL": "JaneDoe.fcs",
        "$DATE": "02-MAR-2024",
    }
    events = np.random.default_rng(2).uniform(0, 1000, size=(2000, 3))
    fcs = tmp_path / "S01_D14.fcs"
    with fcs.open("wb") as handle:
        flowio.create_fcs(
            handle,
            events.flatten().tolist(),
            ["FSC-A", "SSC-A", "FL1-A"],
            metadata_dict={**secrets, "$SPILLOVER": "1,FL1-A,1"},
        )
    strategy_path = tmp_path / "strategy.xml"
    strategy_path.write_text(SMALL_STRATEGY)
    counts, rejections = gate_files(
        [fcs], load_strategy(strategy_path), labels=["S01_D14.fcs"], plot_dir=tmp_path / "qc"
    )
    assert rejections == []
    # Hand check of the counts on the same events: FSC-A >= 200, then FL1-A >= 500.
    cells = events[:, 0] >= 200
    assert counts["count"].tolist() == [
        int(cells.sum()),
        int((cells & (events[:, 2] >= 500)).sum()),
    ]
    write_tsv(counts, tmp_path / "gate_counts.tsv", columns=GATE_COUNT_COLUMNS)
    outputs = (tmp_path / "gate_counts.tsv").read_bytes() + (
        tmp_path / "qc" / "S01_D14.fcs.png"
    ).read_bytes()
    outputs += repr(counts.to_dict()).encode()
    for value in secrets.values():
        assert value.encode() not in outputs
