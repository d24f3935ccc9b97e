"""The FlowKit internals ckpk relies on, all in one place.

FlowKit parses the gating strategy and is the reference for gate counts; ckpk evaluates
the compiled strategy itself (:mod:`ckpk.flow.evaluate`), repeating FlowKit 1.3's
arithmetic. A few things ckpk needs have no public API in FlowKit 1.3, so they are
reached here and nowhere else in ckpk (tests/test_flowkit_compat.py checks both that they
exist and that no other module touches a private FlowKit name):

``GatingStrategy._gate_tree``
    The anytree root of FlowKit's gate tree (``GateNode``: ``.gate``, ``.custom_gates``,
    anytree's ``.children``/``.parent``/``.path``/``.descendants``). Used to list the
    gates in tree order with their quadrant parents, to find every gate a file must
    satisfy (sample-specific FlowJo gates included), and to point FlowJo's
    "Acquisition-defined" dimensions at each file's own spillover.
``WSPBiexTransform._lut_func``
    The lookup table of FlowJo's biexponential transform, which the plan carries so that
    ckpk applies it as FlowKit does.
``flowkit._utils.xml_common.gml_schema``
    The GatingML 2.0 schema FlowKit validates with, used to word the first violation of
    a GatingML file for the person who wrote it.
``flowkit._models.gating_results.GatingResults``
    A type annotation only.

They are why pyproject.toml pins ``flowkit<1.4``. Upgrading past FlowKit 1.3 takes:

1. installing the new release and running tests/test_flowkit_compat.py, which names each
   internal that moved or changed shape;
2. adapting the functions of this module only, to the new internals or to public API
   where the release offers it: ``GatingStrategy.get_gate_ids()`` lists the gates in the
   same tree order and ``get_gate``/``get_parent_gate_id``/``is_custom_gate`` could
   rebuild the walk; the biexponential table can be rebuilt from the transform's
   parameters; the schema has no public equivalent in 1.3 (the alternative is shipping
   the GatingML 2.0 XSD);
3. checking that the release still computes as ckpk's fast path does: its transforms
   (``ckpk.flow.transforms``), its gate tests and its compensation rules
   (``ckpk.flow.evaluate``, ``ckpk.flow.event_space``); tests/test_flow_fast.py compares
   every gate of the GatingML 2.0 suite, the FlowJo workspaces and the shipped strategy
   with FlowKit's own engine, event by event, and every transform value by value;
4. running the whole suite, then widening the pin in pyproject.toml and refreshing
   constraints.txt (``make lock``).

Checked against FlowKit 1.3.2.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit
    from flowkit._models.gating_results import GatingResults  # noqa: F401 - re-exported

# Each internal, as named in the messages, with what ckpk needs it for.
INTERNALS: dict[str, str] = {
    "GatingStrategy._gate_tree": "walking the gate tree (ckpk.flow.strategy)",
    "GateNode.gate": "the gate object of a tree node",
    "GateNode.custom_gates": "sample-specific FlowJo gates of a tree node",
    "flowkit._utils.xml_common.gml_schema": "wording GatingML schema violations",
    "flowkit._models.gating_results.GatingResults": "type annotations",
    "WSPBiexTransform._lut_func": "the lookup table of FlowJo's biexponential transform",
}


class FlowKitInternalMissing(RuntimeError):
    """The installed FlowKit lacks an internal that ckpk relies on."""


def _missing(internal: str) -> FlowKitInternalMissing:
    import flowkit

    return FlowKitInternalMissing(
        f"FlowKit {flowkit.__version__} has no {internal}, which ckpk uses for "
        f"{INTERNALS[internal]}; ckpk supports FlowKit 1.3 (see ckpk/flow/_flowkit_compat.py)"
    )


def _attribute(owner: object, internal: str) -> Any:
    try:
        return getattr(owner, internal.rsplit(".", 1)[1])
    except AttributeError:
        raise _missing(internal) from None


def gate_tree(strategy: flowkit.GatingStrategy) -> Any:
    """The root node of the strategy's gate tree (anytree ``Node`` of FlowKit ``GateNode``s);
    FlowKit has no public walk of its tree in order."""
    return _attribute(strategy, "GatingStrategy._gate_tree")


def custom_gates(node: Any) -> Iterator[object]:
    """Sample-specific gates of a tree node (FlowJo gates edited for one sample)."""
    yield from getattr(node, "custom_gates", {}).values()


def biex_lookup_table(transform: object) -> tuple[Any, Any]:
    """The (x, y) lookup table FlowKit interpolates for FlowJo's biexponential transform
    (``WSPBiexTransform``), so ckpk can apply it without FlowKit."""
    lut = _attribute(transform, "WSPBiexTransform._lut_func")
    return lut.x, lut.y


def gatingml_schema() -> Any:
    """The lxml ``XMLSchema`` of GatingML 2.0 that FlowKit validates documents with."""
    try:
        from flowkit._utils.xml_common import gml_schema
    except ImportError:
        raise _missing("flowkit._utils.xml_common.gml_schema") from None
    return gml_schema


def missing_internals() -> list[str]:
    """A sentence for each internal the installed FlowKit lacks or has changed; empty when
    all are as ckpk expects."""
    import flowkit

    problems: list[str] = []
    strategy = flowkit.GatingStrategy()
    if getattr(strategy, "_gate_tree", None) is None:
        problems.append(str(_missing("GatingStrategy._gate_tree")))
    problems += _missing_node_attributes(strategy)
    lut = getattr(flowkit.transforms.WSPBiexTransform(), "_lut_func", None)
    if not (hasattr(lut, "x") and hasattr(lut, "y")):
        problems.append(str(_missing("WSPBiexTransform._lut_func")))
    try:
        schema_ok = hasattr(gatingml_schema(), "validate")
    except FlowKitInternalMissing:
        schema_ok = False
    if not schema_ok:
        problems.append(str(_missing("flowkit._utils.xml_common.gml_schema")))
    try:
        from flowkit._models.gating_results import GatingResults  # noqa: F401
    except ImportError:
        problems.append(str(_missing("flowkit._models.gating_results.GatingResults")))
    return problems


def _missing_node_attributes(strategy: flowkit.GatingStrategy) -> list[str]:
    """GateNode attributes, checked on a one-gate strategy built with public API."""
    import flowkit

    root = getattr(strategy, "_gate_tree", None)
    if root is None:
        return []  # already reported
    gate = flowkit.gates.RectangleGate(
        "probe", dimensions=[flowkit.Dimension("FSC-A", range_min=0.0)]
    )
    strategy.add_gate(gate, ("root",))
    nodes = list(getattr(root, "descendants", ()))
    node = nodes[0] if nodes else None
    problems = []
    if getattr(node, "gate", None) is not gate:
        problems.append(str(_missing("GateNode.gate")))
    if not isinstance(getattr(node, "custom_gates", None), dict):
        problems.append(str(_missing("GateNode.custom_gates")))
    return problems
