"""Loading GatingML / FlowJo strategies and resolving the gate names given in config."""

from __future__ import annotations

from pathlib import Path

import flowkit as fk
import pytest
from conftest import reference_path, shared_path

from ckpk.errors import ConfigError, InputError
from ckpk.flow.compensation import compensation_refs
from ckpk.flow.strategy import (
    gate_paths,
    load_strategy,
    required_dimensions,
    resolve_gate,
    resolve_gates,
)

DATA = Path(__file__).parent / "data" / "flow"
CART = DATA / "100715_cart.xml"
LIVE = "/root/Lymphocytes/Singlets/Live"


def test_gatingml_strategy_paths_in_tree_order():
    strategy = load_strategy(CART)
    assert gate_paths(strategy) == [
        "/root/Lymphocytes",
        "/root/Lymphocytes/Singlets",
        LIVE,
        f"{LIVE}/CD3pos",
        f"{LIVE}/CD3pos/CD4vCD8/CD4pos_CD8neg",
        f"{LIVE}/CD3pos/CD4vCD8/CD4neg_CD8pos",
        f"{LIVE}/CD3pos/CD4vCD8/CD4pos_CD8pos",
        f"{LIVE}/CD3pos/CD4vCD8/CD4neg_CD8neg",
        f"{LIVE}/CD3neg",
        f"{LIVE}/CD3neg/CD19pos",
    ]
    assert compensation_refs(strategy) == {"FCS"}
    channels = {dim for dim, _ref in required_dimensions(strategy)}
    assert channels == {"FSC-A", "FSC-H", "SSC-A", "V450-A", "R780-A", "V655-A", "V800-A", "G710-A"}


def test_resolve_gates_by_name_or_path():
    strategy = load_strategy(CART)
    resolved = resolve_gates(
        strategy,
        {
            "car_gate": "CD4pos_CD8neg",
            "cd3_gate": "Singlets/Live/CD3pos",
            "lymphocyte_gate": "/root/Lymphocytes",
            "bead_gate": None,
            "b_cell_gate": "",
        },
    )
    assert resolved == {
        "car_gate": f"{LIVE}/CD3pos/CD4vCD8/CD4pos_CD8neg",
        "cd3_gate": f"{LIVE}/CD3pos",
        "lymphocyte_gate": "/root/Lymphocytes",
        "bead_gate": None,
        "b_cell_gate": None,
    }


def test_resolve_gates_errors_name_the_key():
    strategy = load_strategy(CART)
    with pytest.raises(ConfigError, match=r"flow\.car_gate: gate 'CAR\+' is not in"):
        resolve_gates(strategy, {"car_gate": "CAR+", "cd3_gate": "CD3pos"})
    with pytest.raises(ConfigError, match=r"flow\.cd3_gate: no gate name given"):
        resolve_gates(strategy, {"car_gate": "CD3pos"})


def test_ambiguous_gate_name_lists_the_paths():
    # FlowJo allows the same population name under two parents (GatingML ids cannot).
    strategy = fk.GatingStrategy()
    for parent in ("CD4", "CD8"):
        dim = fk.Dimension("FL1-H", range_min=float(len(parent)))
        strategy.add_gate(fk.gates.RectangleGate(parent, [dim]), ("root",))
        dim2 = fk.Dimension("FL2-H", range_min=10.0)
        strategy.add_gate(fk.gates.RectangleGate("CAR+", [dim2]), ("root", parent))
    with pytest.raises(LookupError, match="ambiguous: /root/CD4/CAR\\+, /root/CD8/CAR\\+"):
        resolve_gate(strategy, "CAR+")
    assert resolve_gate(strategy, "CD8/CAR+") == "/root/CD8/CAR+"
    with pytest.raises(ConfigError, match="car_gate: gate 'CAR\\+' is ambiguous"):
        resolve_gates(strategy, {"car_gate": "CAR+", "cd3_gate": "CD4"})


def test_workspace_group_and_template_sample():
    wsp = reference_path(
        "data", "fcs", "flowkit", "simple_line_example", "simple_poly_and_rect.wsp"
    )
    strategy = load_strategy(wsp)
    # Default: the first group other than "All Samples" that has gates.
    assert "group 'my_group'" in strategy.ckpk_notes[0]
    assert gate_paths(strategy) == ["/root/poly1", "/root/rect1"]
    assert "group 'All Samples'" in load_strategy(wsp, "All Samples").ckpk_notes[0]
    with pytest.raises(InputError, match="sample group 'nope' is not in the workspace"):
        load_strategy(wsp, "nope")


def test_workspace_channels_are_required():
    # FlowJo strategies key their transforms by channel name; the gated channels must still
    # be listed (they were once dropped, so a file lacking them failed only at gating).
    folder = reference_path("data", "fcs", "flowkit", "simple_diamond_example")
    strategy = load_strategy(folder / "test_data_diamond_biex_rect.wsp")
    assert set(strategy.transformations) == {"channel_A", "channel_B"}
    assert required_dimensions(strategy) == [("channel_A", None), ("channel_B", None)]
    assert compensation_refs(strategy) == set()


@pytest.mark.shared
def test_files_that_are_not_strategies_are_refused():
    for path in (
        shared_path("data", "fcs", "flowkit", "comp_complete_example.csv"),
        shared_path("data", "fcs", "flowkit", "gate_ref", "gml", "gml_range_gate_attr_testing.xml"),
        shared_path("data", "fcs", "flowkit", "100715.fcs"),
    ):
        with pytest.raises(InputError) as error:
            load_strategy(path)
        assert str(error.value).startswith(str(path))
    with pytest.raises(InputError, match="'sample': This element is not expected"):
        load_strategy(
            shared_path(
                "data", "fcs", "flowkit", "gate_ref", "gml", "gml_range_gate_attr_testing.xml"
            )
        )


def test_xml_entities_are_refused(tmp_path):
    path = tmp_path / "evil.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating">'
        "&e;</gating:Gating-ML>"
    )
    with pytest.raises(InputError, match="DOCTYPE"):
        load_strategy(path)
    with pytest.raises(InputError, match="not found"):
        load_strategy(tmp_path / "absent.xml")
