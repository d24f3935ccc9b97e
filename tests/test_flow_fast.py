"""ckpk's fast gating path against FlowKit's own engine, gate by gate and event by event.

The reference is always FlowKit alone: the strategy parsed again by FlowKit, the FCS file
read by FlowKit (``flowkit.Sample``) and gated by ``GatingStrategy.gate_sample``, or
FlowKit's ``Workspace`` for FlowJo workspaces, and the GatingML 2.0 compliance suite's
per-event truth. Checked on every gate of:

- every GatingML 2.0 compliance strategy (``gate_ref``), on its data file;
- every FlowJo 10 workspace of FlowKit's examples, on every file of its folder;
- the shipped strategy, on simulated files with spillover (and on FlowKit's FACSAria file
  with the test strategy written for it, when ../shared is there);

plus every transform value by value, every value the reader decodes against FlowIO's,
and the fallbacks to FlowKit's engine.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import replace
from pathlib import Path

import flowio
import flowkit as fk
import numpy as np
import pandas as pd
import pytest
from conftest import CORPORA, corpus_path, reference_names, reference_path, shared_path

from ckpk.errors import InputError
from ckpk.flow import transforms
from ckpk.flow.event_space import NeedsFlowKit
from ckpk.flow.fcs import read_fcs_file
from ckpk.flow.fcs_decode import parse_flowdata
from ckpk.flow.gating import gate_events, gate_files
from ckpk.flow.plan import GatingPlan
from ckpk.flow.plan_compile import as_plan
from ckpk.flow.strategy import load_strategy
from ckpk.simulate import SimulationSettings, simulate_trial

PROJECT = Path(__file__).resolve().parents[1]
SHIPPED = PROJECT / "resources" / "gating" / "car_t.xml"
CART = PROJECT / "tests" / "data" / "flow" / "100715_cart.xml"
CYTEK = PROJECT / "tests" / "data" / "flow" / "fcsparser" / "Cytek_xP5.fcs"
GATE_REF = ("data", "fcs", "flowkit", "gate_ref")
INVALID_GML = {"gml_range_gate_attr_testing.xml"}
TRUTH_NAME = {("gml_parent_quadrant_rect_gate.xml", "ParRectangle1"): "ParQuadRect"}
WORKSPACES = {
    "simple_diamond_example": [
        "simple_diamond_example_quad_gate.wsp",
        "test_data_diamond_asinh_rect.wsp",
        "test_data_diamond_biex_rect.wsp",
    ],
    "simple_line_example": [
        "simple_poly_and_rect.wsp",
        "simple_poly_and_rect_v2_poly50.wsp",
        "single_ellipse_51_events.wsp",
    ],
}


def _path_of(rec: object) -> str:
    parts = (*rec.gate_path, *([rec.quadrant_parent] if rec.quadrant_parent else []), rec.gate_name)
    return "/" + "/".join(parts)


def flowkit_membership(fcs: Path, strategy: fk.GatingStrategy) -> dict[str, np.ndarray]:
    """Every gate's per-event membership by FlowKit alone (its reader, its engine)."""
    results = strategy.gate_sample(fk.Sample(str(fcs)))
    return {
        _path_of(rec): np.asarray(
            results.get_gate_membership(rec.gate_name, gate_path=tuple(rec.gate_path)), dtype=bool
        )
        for rec in results.report.itertuples(index=False)
    }


def assert_same_gating(outcome: object, reference: dict[str, np.ndarray]) -> int:
    """Every gate: the same events and the same count. Returns the number of gates."""
    counts = dict(zip(outcome.counts["gate_path"], outcome.counts["count"], strict=True))
    assert set(counts) == set(reference)
    for path, member in reference.items():
        np.testing.assert_array_equal(outcome.membership[path], member, err_msg=path)
        assert counts[path] == int(member.sum()), path
    return len(reference)


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    found = {}
    for path in sorted(reference_path(*GATE_REF, "truth").glob("Results_*.txt")):
        name = re.match(r"Results_(.+)\.txt$", path.name).group(1)
        found[name] = pd.read_csv(path, header=None, dtype="bool").squeeze().to_numpy()
    return found


@pytest.mark.parametrize("gml", reference_names(*GATE_REF, "gml", pattern="*.xml"))
def test_gatingml_suite_fast_path_equals_flowkit_and_truth(gml, truth):
    if gml in INVALID_GML:
        pytest.skip("schema-invalid on purpose: refused at loading (test_flow_gating.py)")
    path = reference_path(*GATE_REF, "gml", gml)
    fcs = reference_path(*GATE_REF, "data1.fcs")
    outcome = gate_events(read_fcs_file(fcs), load_strategy(path), engine="fast")
    assert outcome.engine == "fast"
    assert assert_same_gating(outcome, flowkit_membership(fcs, fk.parse_gating_xml(str(path))))
    for gate_path in outcome.counts["gate_path"]:
        name = TRUTH_NAME.get((gml, gate_path.rsplit("/", 1)[-1]), gate_path.rsplit("/", 1)[-1])
        if name in truth:
            np.testing.assert_array_equal(outcome.membership[gate_path], truth[name])


@pytest.mark.parametrize(
    ("folder", "wsp"), [(f, w) for f, names in WORKSPACES.items() for w in names]
)
def test_flowjo_workspaces_fast_path_equals_flowkit_workspace(folder, wsp):
    path = reference_path("data", "fcs", "flowkit", folder, wsp)
    files = sorted(path.parent.glob("*.fcs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = fk.Workspace(str(path), fcs_samples=[str(f) for f in files])
    workspace.analyze_samples(use_mp=False)
    plan = as_plan(load_strategy(path))
    assert plan.fallback is None
    gates = 0
    for fcs in files:
        outcome = gate_events(read_fcs_file(fcs), plan, engine="fast")
        sample_id = next(s for s in workspace.get_sample_ids() if s == fcs.name)
        report = workspace.get_analysis_report()
        report = report[report["sample_id"] == sample_id]
        reference = {}
        for rec in report.itertuples(index=False):
            reference[_path_of(rec)] = np.asarray(
                workspace.get_gate_membership(
                    sample_id, rec.gate_name, gate_path=tuple(rec.gate_path)
                ),
                dtype=bool,
            )
        gates += assert_same_gating(outcome, reference)
    assert gates >= len(files)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> list[Path]:
    """FCS files of the simulated panel: a $SPILLOVER mixes every fluorescence channel."""
    trial = tmp_path_factory.mktemp("fast") / "trial"
    simulate_trial(trial, SimulationSettings(n_subjects=2, seed=11, events_per_file=20_000))
    files = sorted((trial / "flow").rglob("*.fcs"))
    return [f for f in files if f.read_bytes()[:3] == b"FCS"][:12]


def test_shipped_strategy_on_simulated_files_with_spillover(simulated):
    plan = as_plan(load_strategy(SHIPPED))
    reference_strategy = fk.parse_gating_xml(str(SHIPPED))
    gated = 0
    for fcs in simulated:
        try:
            data = read_fcs_file(fcs)
        except InputError:
            continue  # the simulator plants damaged files
        assert "spillover" in data.metadata
        outcome = gate_events(data, plan, engine="fast")
        assert outcome.compensation == "file"
        assert assert_same_gating(outcome, flowkit_membership(fcs, reference_strategy)) == 9
        gated += 1
    assert gated >= 8


@pytest.mark.shared
def test_facsaria_file_with_its_strategy():
    fcs = shared_path("data", "fcs", "flowkit", "100715.fcs")
    outcome = gate_events(read_fcs_file(fcs), load_strategy(CART), engine="fast")
    reference = flowkit_membership(fcs, fk.parse_gating_xml(str(CART)))
    assert assert_same_gating(outcome, reference) == 10


def _strategies() -> list[object]:
    found = [load_strategy(reference_path(*GATE_REF, "gml", "gml_all_gates.xml"))]
    found += [
        load_strategy(reference_path("data", "fcs", "flowkit", folder, wsp))
        for folder, names in WORKSPACES.items()
        for wsp in names
    ]
    return found


def test_every_transform_equals_flowkits_value_by_value():
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.normal(0, 300, 4000),
            rng.lognormal(6, 2.5, 4000),
            -rng.lognormal(3, 2, 1000),
            [0.0, -0.0, 1e-300, 262143.0, 262144.0, 1e7, -1e7, np.nan, np.inf, -np.inf],
        ]
    )
    subset = np.sort(rng.choice(len(values), 777, replace=False))
    kinds = set()
    for strategy in _strategies():
        plan = as_plan(strategy)
        for key, transform in strategy.transformations.items():
            spec = plan.transforms[key]
            if spec.kind == "ratio":
                continue
            with np.errstate(all="ignore"):
                theirs = np.asarray(transform.apply(values[:, None])).ravel()
                ours = transforms.apply(spec, values[subset])
            np.testing.assert_array_equal(ours, theirs[subset], err_msg=f"{key}: {spec.kind}")
            kinds.add(spec.kind)
    assert {"flin", "logicle", "fasinh", "hyperlog", "flog", "wsp_biex"} <= kinds


def test_plan_survives_json_unchanged():
    for strategy in _strategies():
        plan = as_plan(strategy)
        again = GatingPlan.from_json(plan.to_json())
        assert again == plan
        assert again.strategy is None


def _flowio_values(path: Path) -> np.ndarray:
    """The same data set decoded by FlowIO and preprocessed by it (FlowKit's raw events)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _notes, _options = parse_flowdata(path, path.name)
    step = data.text.get("timestep", "")
    if step.strip() and not re.fullmatch(r"\s*[-+.0-9eE]+\s*", step):
        del data.text["timestep"]  # ckpk leaves Time unscaled then (a note says so)
    return data.as_array(preprocess=True)


@pytest.mark.parametrize("corpus", CORPORA)
def test_reader_values_equal_flowios_for_every_file(corpus):
    root = corpus_path(corpus, "data", "fcs")
    compared = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            data = read_fcs_file(path)
        except InputError:
            continue
        expected = _flowio_values(path)
        np.testing.assert_array_equal(data.events.as_array(), expected, err_msg=str(path))
        compared += 1
    assert compared >= 3


def test_24_bit_integer_data_is_read():
    """The Cytek xP5 file of fcsparser's test data stores 24-bit integers, which FlowIO
    does not decode. Its first two events as fcsparser's tests give them (stored values,
    masked to the 10 bits of $PnR 1024), and the log channels ($PnE 4,1) scaled as
    FlowIO scales them."""
    data = read_fcs_file(CYTEK)
    stored = np.column_stack([data.events.stored(i) for i in range(8)])
    np.testing.assert_array_equal(
        stored[:2],
        [[0, 286, 164, 154, 54, 470, 1023, 770], [0, 171, 128, 153, 199, 91, 211, 12]],
    )
    assert data.event_count == 23126 and data.notes == []
    np.testing.assert_array_equal(data.column(3), 10 ** (4.0 * stored[:, 3] / 1024.0) * 1.0)
    np.testing.assert_array_equal(data.column(0), stored[:, 0] * 0.001)  # $TIMESTEP
    with pytest.raises(InputError, match="could not be decoded"):
        # FlowIO itself refuses it: what ckpk said before it read such files.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ckpk.flow.fcs import _check_layout

            flow, _, _ = parse_flowdata(CYTEK, CYTEK.name)
            _check_layout(flow, CYTEK.name, None if flow.events is None else len(flow.events))


BOUNDARY = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="Cells">
    <gating:dimension gating:compensation-ref="uncompensated" gating:min="200">
      <data-type:fcs-dimension data-type:name="FSC-A" />
    </gating:dimension>
  </gating:RectangleGate>
  <gating:RectangleGate gating:id="Pos" gating:parent_id="Cells">
    <gating:dimension gating:compensation-ref="FCS" gating:min="{threshold}">
      <data-type:fcs-dimension data-type:name="FL2-A" />
    </gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""


def _boundary_case(tmp_path: Path, threshold: float) -> tuple[Path, Path]:
    """Events of which some lie, once compensated, exactly on the FL2-A threshold (and
    some exactly on the uncompensated FSC-A threshold, 200)."""
    rng = np.random.default_rng(8)
    events = rng.uniform(100, 2000, size=(3000, 3))
    events[:50, 0] = 200.0  # on the uncompensated threshold: exact in both engines
    events[50:60, 1:] = [1000.0, 600.0]  # FL2-A compensated: 600 - 0.1 * 1000 = 500
    fcs = tmp_path / "S01_D7.fcs"
    with fcs.open("wb") as handle:
        flowio.create_fcs(
            handle,
            events.ravel().tolist(),
            ["FSC-A", "FL1-A", "FL2-A"],
            metadata_dict={"$SPILLOVER": "2,FL1-A,FL2-A,1,0.1,0,1"},
        )
    strategy = tmp_path / "boundary.xml"
    strategy.write_text(BOUNDARY.format(threshold=threshold))
    return fcs, strategy


def test_an_event_on_a_compensated_boundary_is_left_to_flowkit(tmp_path, caplog):
    fcs, strategy = _boundary_case(tmp_path, 500)
    data = read_fcs_file(fcs)
    with pytest.raises(NeedsFlowKit, match="rounding"):
        gate_events(data, load_strategy(strategy), engine="fast")
    with caplog.at_level(logging.INFO, logger="ckpk.flow.gating"):
        outcome = gate_events(data, load_strategy(strategy))
    assert outcome.engine == "flowkit" and "rounding" in outcome.reason
    assert "gated by FlowKit's engine" in caplog.text
    assert_same_gating(outcome, flowkit_membership(fcs, fk.parse_gating_xml(str(strategy))))
    # Away from the boundary the fast path proves its decisions and keeps the file.
    fcs, strategy = _boundary_case(tmp_path, 510)
    outcome = gate_events(read_fcs_file(fcs), load_strategy(strategy), engine="fast")
    assert outcome.counts["count"].iloc[0] == (np.asarray(outcome.membership["/root/Cells"])).sum()
    assert_same_gating(outcome, flowkit_membership(fcs, fk.parse_gating_xml(str(strategy))))


def test_a_strategy_the_fast_path_does_not_cover_is_gated_by_flowkit(tmp_path, caplog):
    fcs, strategy_path = _boundary_case(tmp_path, 510)
    plan = as_plan(load_strategy(strategy_path))
    uncovered = replace(plan, gates=(), fallback="a gate type of a later FlowKit")
    with caplog.at_level(logging.INFO, logger="ckpk.flow.gating"):
        counts, rejections = gate_files([fcs], uncovered, labels=["S01_D7.fcs"])
    assert rejections == []
    assert "the fast path does not cover this strategy: a gate type" in caplog.text
    assert "fast path for 0 file(s), FlowKit's engine for 1" in caplog.text
    fast, _ = gate_files([fcs], plan, labels=["S01_D7.fcs"])
    pd.testing.assert_frame_equal(counts, fast)
    # A file with sample-specific FlowJo gates is gated by FlowKit too.
    custom = replace(plan, custom_gate_samples=("S01_D7.fcs",))
    outcome = gate_events(read_fcs_file(fcs, label="S01_D7.fcs"), custom)
    assert outcome.engine == "flowkit" and "sample-specific" in outcome.reason


def test_gate_files_says_which_engine_gated(simulated, caplog):
    with caplog.at_level(logging.INFO, logger="ckpk.flow.gating"):
        gate_files(simulated[:3], load_strategy(SHIPPED))
    assert "gating engine: ckpk fast path (9 gates compiled from car_t.xml)" in caplog.text
    assert re.search(r"fast path for \d+ file\(s\), FlowKit's engine for 0", caplog.text)


def test_nan_and_infinite_values_fall_as_flowkit_has_them(tmp_path):
    """Events with NaN or infinite values, scatter and fluorescence: the same members as
    FlowKit's (whichever engine gated the file)."""
    rng = np.random.default_rng(21)
    names = ["FSC-A", "FSC-H", "SSC-A", "FITC-A", "PE-A", "PerCP-Cy5-5-A", "PE-Cy7-A"]
    names += ["APC-A", "BV421-A"]
    events = np.column_stack(
        [
            rng.normal(55_000, 5_000, 4000),
            rng.normal(47_000, 4_000, 4000),
            rng.lognormal(9.4, 0.2, 4000),
            *(rng.lognormal(5 + 2 * (i % 2), 1.5, 4000) for i in range(6)),
        ]
    )
    for row, column in ((0, 0), (1, 5), (2, 8), (3, 3)):
        events[row, column] = np.nan
    for row, column, value in ((4, 5, np.inf), (5, 6, -np.inf), (6, 1, np.inf)):
        events[row, column] = value
    fcs = tmp_path / "S01_D1.fcs"
    spill = (
        "6,"
        + ",".join(names[3:])
        + ","
        + ",".join("1" if i == j else "0.05" for i in range(6) for j in range(6))
    )
    with fcs.open("wb") as handle:
        flowio.create_fcs(
            handle, events.ravel().tolist(), names, metadata_dict={"$SPILLOVER": spill}
        )
    data = read_fcs_file(fcs)
    assert "not finite" in " ".join(data.notes)
    outcome = gate_events(data, load_strategy(SHIPPED))
    assert_same_gating(outcome, flowkit_membership(fcs, fk.parse_gating_xml(str(SHIPPED))))


def test_a_plan_is_reused_only_for_the_very_strategy_it_was_compiled_from(tmp_path):
    from ckpk.flow.plan import cached_plan, write_plan

    strategy = tmp_path / "car_t.xml"
    strategy.write_bytes(SHIPPED.read_bytes())
    plan_path = write_plan(as_plan(load_strategy(strategy)), tmp_path / "plan.json")
    assert cached_plan(plan_path, strategy, None) == as_plan(load_strategy(strategy))
    assert cached_plan(plan_path, strategy, "CAR T panel") is None  # another sample group
    strategy.write_bytes(SHIPPED.read_bytes().replace(b'gating:min="0.42"', b'gating:min="0.43"'))
    assert cached_plan(plan_path, strategy, None) is None  # the strategy was edited
    assert cached_plan(tmp_path / "absent.json", strategy, None) is None
