"""Gating through ckpk against references made elsewhere.

- GatingML 2.0 compliance suite (ISAC / FlowKit gate_ref): per-event truth for every gate.
- FlowKit's own engine on the same file and strategy, read by FlowKit itself.
- FlowJo workspaces: FlowKit's Workspace and the counts FlowKit's test suite asserts.
- FlowJo "Acquisition-defined" compensation: FlowKit's Workspace and GatingStrategy given the
  file's own spillover matrix.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import flowio
import flowkit as fk
import numpy as np
import pandas as pd
import pytest
from conftest import reference_names, reference_path, shared_path

from ckpk.errors import InputError
from ckpk.flow.compensation import compensation_refs
from ckpk.flow.fcs import read_fcs
from ckpk.flow.gating import GATE_COUNT_COLUMNS, gate_events, gate_files, gate_sample
from ckpk.flow.stage import qc_plotter
from ckpk.flow.strategy import load_strategy
from ckpk.tables import read_tsv, write_tsv

DATA = Path(__file__).parent / "data" / "flow"
CART = DATA / "100715_cart.xml"

# gate_ref truth files are named after the gate, except one (FlowKit gatingml_tests.py).
TRUTH_NAME = {("gml_parent_quadrant_rect_gate.xml", "ParRectangle1"): "ParQuadRect"}
# Schema-invalid on purpose (an unknown <sample> element): must be refused, not gated.
INVALID_GML = {"gml_range_gate_attr_testing.xml"}


def _gate_ref() -> Path:
    return reference_path("data", "fcs", "flowkit", "gate_ref")


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    truth = {}
    for path in sorted((_gate_ref() / "truth").glob("Results_*.txt")):
        name = re.match(r"Results_(.+)\.txt$", path.name).group(1)
        truth[name] = pd.read_csv(path, header=None, dtype="bool").squeeze().to_numpy()
    return truth


def _gml_files() -> list[str]:
    """Names of the suite's GatingML files, collected before tests run: those copied to
    tests/data/shared, and any more in ../shared."""
    return reference_names("data", "fcs", "flowkit", "gate_ref", "gml", pattern="*.xml")


@pytest.fixture(scope="module")
def data1():
    sample, _ = read_fcs(_gate_ref() / "data1.fcs")
    return sample


@pytest.mark.parametrize("gml", _gml_files())
def test_gatingml_compliance_suite(gml, truth, data1):
    path = reference_path("data", "fcs", "flowkit", "gate_ref", "gml", gml)
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
# The FlowKit example folder of each workspace; its FCS files are beside it.
WSP_FOLDER = {
    "simple_diamond_example_quad_gate.wsp": "simple_diamond_example",
    "test_data_diamond_biex_rect.wsp": "simple_diamond_example",
    "test_data_diamond_asinh_rect.wsp": "simple_diamond_example",
    "single_ellipse_51_events.wsp": "simple_line_example",
    "simple_poly_and_rect.wsp": "simple_line_example",
    "simple_poly_and_rect_v2_poly50.wsp": "simple_line_example",
}


@pytest.mark.parametrize("wsp_name", sorted(WSP_EXPECTED))
def test_flowjo_workspace_counts_equal_flowkit_workspace(wsp_name):
    wsp = reference_path("data", "fcs", "flowkit", WSP_FOLDER[wsp_name], wsp_name)
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
        on_file=qc_plotter(strategy, tmp_path / "qc"),
    )
    assert set(counts["file"]) == {"S01_D14.fcs"}
    reasons = dict(rejections)
    assert list(reasons) == ["S01_D0.fcs", "S01_D28.fcs", "S01_D56.fcs"]
    assert "empty" in reasons["S01_D0.fcs"]
    assert "missing channel(s)" in reasons["S01_D28.fcs"]
    assert "not an FCS file" in reasons["S01_D56.fcs"]
    assert [p.name for p in (tmp_path / "qc").iterdir()] == ["S01_D14.png"]  # gated only
    assert (tmp_path / "qc" / "S01_D14.png").stat().st_size > 10_000

    # The table survives ckpk's TSV writer and reader unchanged.
    write_tsv(counts, tmp_path / "gate_counts.tsv", columns=GATE_COUNT_COLUMNS)
    back = read_tsv(tmp_path / "gate_counts.tsv")
    assert back["count"].tolist() == counts["count"].tolist()
    assert back["gate_path"].tolist() == counts["gate_path"].tolist()


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
    strategy = load_strategy(strategy_path)
    counts, rejections = gate_files(
        [fcs], strategy, labels=["S01_D14.fcs"], on_file=qc_plotter(strategy, tmp_path / "qc")
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
        tmp_path / "qc" / "S01_D14.png"
    ).read_bytes()
    outputs += repr(counts.to_dict()).encode()
    for value in secrets.values():
        assert value.encode() not in outputs


# FlowJo compensation. None of the shared FlowJo workspaces carries a matrix (they gate two
# uncompensated channels), so these tests write a minimal FlowJo 10 workspace the way FlowJo
# lays one out and FlowKit's parser reads it: per <Sample>, a <transforms:spilloverMatrix>
# (FlowJo names the matrix read from the file's $SPILLOVER "Acquisition-defined", prefix
# "Comp-"), transforms for the plain and the "Comp-" channels, and the gate tree under
# <SampleNode>, drawn on "Comp-" channels with coordinates in raw (untransformed) units.
_WSP_NS = (
    'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
    'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
    'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"'
)


def _wsp_dim(channel: str, low: float | None = None, high: float | None = None) -> str:
    bounds = "".join(
        f' gating:{key}="{value}"' for key, value in (("min", low), ("max", high)) if value
    )
    return (
        f"<gating:dimension{bounds}>"
        f'<data-type:fcs-dimension data-type:name="{channel}" /></gating:dimension>'
    )


def _wsp_population(name: str, gate: str, children: str = "") -> str:
    sub = f"<Subpopulations>{children}</Subpopulations>" if children else ""
    return (
        f'<Population name="{name}" annotation="" owningGroup="CAR T" count="-1">'
        f'<Gate gating:id="ID{sum(map(ord, name))}">{gate}</Gate>{sub}</Population>'
    )


def _wsp_rect(*dims: str) -> str:
    return f'<gating:RectangleGate eventsInside="1">{"".join(dims)}</gating:RectangleGate>'


def _wsp_gate_tree() -> str:
    """Lymphocytes > Live > CD3+ > CD4+ / CD8+, Live > CD19+ on 100715.fcs's panel (CD3
    R780-A, CD4 V655-A, CD8 V800-A, CD19 G710-A, viability V450-A); thresholds are the
    logicle values of tests/data/flow/100715_cart.xml in raw units."""
    vertices = [(25000, 40), (100000, 40), (100000, 800), (25000, 800)]
    polygon = (
        '<gating:PolygonGate eventsInside="1">'
        + _wsp_dim("FSC-A")
        + _wsp_dim("SSC-A")
        + "".join(
            f'<gating:vertex><gating:coordinate data-type:value="{x}" />'
            f'<gating:coordinate data-type:value="{y}" /></gating:vertex>'
            for x, y in vertices
        )
        + "</gating:PolygonGate>"
    )
    cd4 = _wsp_population(
        "CD4+", _wsp_rect(_wsp_dim("Comp-V655-A", low=960), _wsp_dim("Comp-V800-A", high=960))
    )
    cd8 = _wsp_population(
        "CD8+", _wsp_rect(_wsp_dim("Comp-V800-A", low=960), _wsp_dim("Comp-V655-A", high=960))
    )
    cd3 = _wsp_population("CD3+", _wsp_rect(_wsp_dim("Comp-R780-A", low=150)), cd4 + cd8)
    cd19 = _wsp_population(
        "CD19+", _wsp_rect(_wsp_dim("Comp-G710-A", low=2570), _wsp_dim("Comp-R780-A", high=150))
    )
    live = _wsp_population("Live", _wsp_rect(_wsp_dim("Comp-V450-A", high=5200)), cd3 + cd19)
    return _wsp_population("Lymphocytes", polygon, live)


def _flowjo_workspace(
    sample_name: str, matrix_name: str, detectors: list[str], matrix: np.ndarray
) -> str:
    parameters = "".join(
        f'<data-type:parameter data-type:name="{d}" userProvidedCompInfix="Comp-{d}" />'
        for d in detectors
    )
    rows = "".join(
        f'<transforms:spillover data-type:parameter="{d}" userProvidedCompInfix="Comp-{d}">'
        + "".join(
            f'<transforms:coefficient data-type:parameter="{d2}" '
            f'transforms:value="{float(matrix[i, j])!r}" />'
            for j, d2 in enumerate(detectors)
        )
        + "</transforms:spillover>"
        for i, d in enumerate(detectors)
    )
    spillover = (
        f'<transforms:spilloverMatrix spectral="0" prefix="Comp-" name="{matrix_name}" '
        'editable="0" color="#c0c0c0" version="FlowJo-10.6.2" status="FINALIZED" '
        f'transforms:id="1" suffix=""><data-type:parameters>{parameters}'
        f"</data-type:parameters>{rows}</transforms:spilloverMatrix>"
    )
    linear = "".join(
        '<transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">'
        f'<data-type:parameter data-type:name="{p}" /></transforms:linear>'
        for p in ("FSC-A", "FSC-H", "SSC-A")
    )
    logicle = "".join(
        '<transforms:logicle transforms:length="256" transforms:T="262144" transforms:W="0.5" '
        'transforms:M="4.5" transforms:A="0">'
        f'<data-type:parameter data-type:name="{p}" /></transforms:logicle>'
        for d in detectors
        for p in (d, "Comp-" + d)
    )
    tree = _wsp_gate_tree()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Workspace version="20.0" flowJoVersion="10.6.2" {_WSP_NS}>
<Groups>
<GroupNode name="All Samples" annotation="" owningGroup="All Samples"><Group name="All Samples">
<SampleRefs><SampleRef sampleID="1" /></SampleRefs></Group></GroupNode>
<GroupNode name="CAR T" annotation="" owningGroup="CAR T"><Subpopulations>{tree}</Subpopulations>
<Group name="CAR T"><SampleRefs><SampleRef sampleID="1" /></SampleRefs></Group></GroupNode>
</Groups>
<SampleList><Sample>
<DataSet uri="file:/data/{sample_name}" sampleID="1" />
{spillover}
<Transformations>{linear}{logicle}</Transformations>
<Keywords />
<SampleNode name="{sample_name}" annotation="" owningGroup="" sampleID="1">
<Subpopulations>{tree}</Subpopulations></SampleNode>
</Sample></SampleList>
</Workspace>
"""


def _spill_matrix(spill: str) -> tuple[list[str], np.ndarray]:
    """$SPILLOVER text → detectors and matrix (FCS 3.1 §3.3.32: n, n names, n×n values)."""
    parts = spill.split(",")
    n = int(parts[0])
    return parts[1 : 1 + n], np.array(parts[1 + n :], dtype=float).reshape(n, n)


def _flowkit_counts(report: pd.DataFrame) -> dict[str, int]:
    return dict(zip(report["gate_name"], report["count"].astype(int), strict=True))


@pytest.fixture(scope="module")
def acquisition_case(tmp_path_factory) -> dict:
    """100715.fcs and workspaces whose template sample, T01_D0.fcs, was acquired with other
    spillover values (the file's off-diagonal coefficients halved)."""
    fcs = shared_path("data", "fcs", "flowkit", "100715.fcs")
    folder = tmp_path_factory.mktemp("wsp")
    reference = fk.Sample(str(fcs))  # FlowKit reading the file itself
    detectors, own = _spill_matrix(reference.metadata["spill"])
    other = own.copy()
    other[~np.eye(len(detectors), dtype=bool)] *= 0.5
    paths = {}
    for key, sample_name, matrix_name, matrix in (
        ("acquisition", "T01_D0.fcs", "Acquisition-defined", other),
        ("custom", "T01_D0.fcs", "CAR panel 2024", other),
        ("own_wsp", "100715.fcs", "Acquisition-defined", own),
    ):
        paths[key] = folder / f"{key}.wsp"
        paths[key].write_text(_flowjo_workspace(sample_name, matrix_name, detectors, matrix))
    return {"fcs": fcs, "sample": reference, "detectors": detectors, "own": own, **paths}


@pytest.mark.shared
def test_acquisition_defined_workspace_compensates_each_file_with_its_own_spill(
    acquisition_case,
):
    case = acquisition_case
    strategy = load_strategy(case["acquisition"])
    assert compensation_refs(strategy) == {"FCS"}
    assert strategy.comp_matrices == {}
    assert "each file is compensated with its own $SPILLOVER" in strategy.ckpk_notes[1]

    counts, rejections = gate_files([case["fcs"]], strategy, labels=["S01_D14.fcs"])
    assert rejections == []
    assert (counts["compensation"] == "file").all()
    ours = dict(zip(counts["gate"], counts["count"], strict=True))

    # Reference 1: FlowKit's Workspace on the workspace FlowJo writes once this file is in
    # it, its Acquisition-defined matrix then being this file's own SPILL.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = fk.Workspace(str(case["own_wsp"]), fcs_samples=[str(case["fcs"])])
    workspace.analyze_samples(use_mp=False)
    assert ours == _flowkit_counts(workspace.get_analysis_report())

    # Reference 2: the template's gate tree as FlowKit parses it, its matrix replaced by a
    # flowkit.Matrix of the file's own spillover.
    template = fk.parse_wsp(str(case["acquisition"]))["samples"]["T01_D0.fcs"]["gating_strategy"]
    template.comp_matrices["Acquisition-defined"] = fk.Matrix(case["own"], case["detectors"])
    assert ours == _flowkit_counts(template.gate_sample(case["sample"]).report)
    assert ours["CD3+"] > 10_000 and ours["CD19+"] > 100


@pytest.mark.shared
def test_workspace_matrix_is_applied_to_every_file(acquisition_case):
    case = acquisition_case
    strategy = load_strategy(case["custom"])
    assert "'CAR panel 2024' defined in the workspace is applied" in strategy.ckpk_notes[1]
    counts, rejections = gate_files([case["fcs"]], strategy, labels=["S01_D14.fcs"])
    assert rejections == []
    assert (counts["compensation"] == "strategy").all()
    ours = dict(zip(counts["gate"], counts["count"], strict=True))
    # Reference: FlowKit gating with the workspace's matrix as it parsed it.
    template = fk.parse_wsp(str(case["custom"]))["samples"]["T01_D0.fcs"]["gating_strategy"]
    assert ours == _flowkit_counts(template.gate_sample(case["sample"]).report)
    # The two matrices give different counts, so the tests above tell them apart.
    own = gate_files([case["fcs"]], load_strategy(case["acquisition"]), labels=["x"])[0]
    assert ours["CD3+"] != dict(zip(own["gate"], own["count"], strict=True))["CD3+"]


@pytest.mark.shared
def test_acquisition_defined_rejects_files_without_a_usable_spill(acquisition_case, tmp_path):
    """FlowJo has no "Comp-" channels for a file without its own matrix (or whose matrix
    lacks a gated channel), so the workspace's gates cannot be applied to it."""
    case = acquisition_case
    channels = list(case["sample"].pnn_labels)
    events = np.random.default_rng(5).uniform(50, 60_000, size=(500, len(channels)))
    detectors, own = case["detectors"], case["own"]
    keep = [i for i, d in enumerate(detectors) if d != "V655-A"]
    without_v655 = ",".join(
        [str(len(keep)), *(detectors[i] for i in keep), *map(str, own[np.ix_(keep, keep)].ravel())]
    )
    whole = ",".join([str(len(detectors)), *detectors, *map(str, own.ravel())])
    spills = {
        "S01_D1.fcs": None,
        "S01_D2.fcs": without_v655,
        "S01_D3.fcs": whole.replace(",1.0,", ",one,", 1),
        "S01_D4.fcs": whole,
    }
    paths = []
    for name, spill in spills.items():
        paths.append(tmp_path / name)
        with paths[-1].open("wb") as handle:
            metadata = {"$SPILLOVER": spill} if spill else {}
            flowio.create_fcs(handle, events.ravel().tolist(), channels, metadata_dict=metadata)
    counts, rejections = gate_files(
        paths, load_strategy(case["acquisition"]), labels=[p.name for p in paths]
    )
    reasons = dict(rejections)
    assert sorted(reasons) == ["S01_D1.fcs", "S01_D2.fcs", "S01_D3.fcs"]
    assert reasons["S01_D1.fcs"].startswith("S01_D1.fcs: ")
    assert "no $SPILLOVER/SPILL keyword" in reasons["S01_D1.fcs"]
    assert "does not include the gated channel(s) V655-A" in reasons["S01_D2.fcs"]
    assert "spillover matrix ($SPILLOVER) is damaged: some coefficients" in reasons["S01_D3.fcs"]
    assert set(counts["file"]) == {"S01_D4.fcs"}
    assert (counts["compensation"] == "file").all()
    # A matrix defined in the workspace needs nothing from the file.
    counts, rejections = gate_files(paths[:1], load_strategy(case["custom"]), labels=["S01_D1.fcs"])
    assert rejections == [] and (counts["compensation"] == "strategy").all()


ACCURI_STRATEGY = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="FL1pos_FL2pos">
    <gating:dimension gating:compensation-ref="FCS" gating:min="30">
      <data-type:fcs-dimension data-type:name="FL1-A" />
    </gating:dimension>
    <gating:dimension gating:compensation-ref="FCS" gating:min="40">
      <data-type:fcs-dimension data-type:name="FL2-A" />
    </gating:dimension>
  </gating:RectangleGate>
  <gating:RectangleGate gating:id="Narrow">
    <gating:dimension gating:compensation-ref="FCS" gating:max="38">
      <data-type:fcs-dimension data-type:name="Width" />
    </gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""


@pytest.mark.shared
def test_accuri_spillover_compensates_only_the_channels_it_lists(tmp_path):
    """The BD Accuri C6 file's $SPILLOVER covers FL1-A..FL4-H but not the "Width" pulse
    channel; FlowKit alone refuses such a matrix unless Width is declared a null channel."""
    fcs = shared_path("data", "fcs", "flowio", "B01 KC-A-W---91-US.fcs")
    strategy_path = tmp_path / "accuri.xml"
    strategy_path.write_text(ACCURI_STRATEGY)
    counts, rejections = gate_files([fcs], load_strategy(strategy_path), labels=["S01_D7.fcs"])
    assert rejections == []
    ours = dict(zip(counts["gate"], counts["count"], strict=True))
    assert (counts["compensation"] == "file").all()
    assert "Width are not in the file's $SPILLOVER" in counts["notes"].iloc[0]

    # Reference 1: FlowKit, told that Width is not a compensated channel.
    sample = fk.Sample(str(fcs), null_channel_list=["Width"])
    report = fk.parse_gating_xml(str(strategy_path)).gate_sample(sample).report
    assert ours == _flowkit_counts(report)
    # Reference 2: by hand from FlowIO's events, compensated = raw x inverse(spillover);
    # GatingML 2.0 rectangle ranges include their min and exclude their max.
    data = flowio.FlowData(str(fcs))
    events = data.as_array(preprocess=True)
    detectors, spill = _spill_matrix(data.text["spillover"])
    compensated = events[:, [data.pnn_labels.index(d) for d in detectors]] @ np.linalg.inv(spill)
    fl1, fl2 = compensated[:, detectors.index("FL1-A")], compensated[:, detectors.index("FL2-A")]
    width = events[:, data.pnn_labels.index("Width")]
    assert ours == {
        "FL1pos_FL2pos": int(((fl1 >= 30) & (fl2 >= 40)).sum()),
        "Narrow": int((width < 38).sum()),
    }
    assert 0 < ours["FL1pos_FL2pos"] < 1589 and 0 < ours["Narrow"] < 1589


@pytest.mark.shared
def test_qc_plot_reuses_the_gated_events(tmp_path):
    """The QC plot draws the values computed while gating (the outcome's event space);
    drawing after gating again from scratch gives the same picture, byte for byte."""
    from ckpk.flow.fcs import read_fcs_file
    from ckpk.flow.qc_plot import plot_gates

    data = read_fcs_file(shared_path("data", "fcs", "flowkit", "100715.fcs"))
    strategy = load_strategy(CART)
    outcome = gate_events(data, strategy)
    assert outcome.engine == "fast"
    cached = plot_gates(data, strategy, tmp_path / "cached.png", outcome=outcome)
    fresh = plot_gates(data, strategy, tmp_path / "fresh.png")
    assert cached.read_bytes() == fresh.read_bytes()
