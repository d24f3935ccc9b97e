"""The FlowKit internals ckpk relies on, all in one place.

ckpk gates with FlowKit's own engine, since FlowKit's counts are the reference. A few
things ckpk needs have no public API in FlowKit 1.3, so they are reached here and nowhere
else in ckpk (tests/test_flowkit_compat.py checks both that they exist and that no other
module touches a private FlowKit name):

``GatingStrategy._gate_tree``
    The anytree root of FlowKit's gate tree (``GateNode``: ``.gate``, ``.custom_gates``,
    anytree's ``.children``/``.parent``/``.path``/``.descendants``). Used to list the
    gates in tree order with their quadrant parents, to find every gate a file must
    satisfy (sample-specific FlowJo gates included), and to point FlowJo's
    "Acquisition-defined" dimensions at each file's own spillover.
``GatingStrategy._cached_preprocessed_events``
    FlowKit's per-sample cache of compensated and transformed events. Read after gating
    and put back before drawing, so the QC plot draws the very events that were gated
    without compensating and transforming them again.
``GatingStrategy._preprocess_sample_events(sample, gate, cache_events)``
    A gate's events in the gate's own compensated and transformed space, for the QC plot.
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
   rebuild the walk; without the event cache the QC plot only costs a third more; the
   gate-space events and the schema have no public equivalent in 1.3 (the
   alternatives are applying ``comp_matrices`` and ``transformations`` in ckpk, and
   shipping the GatingML 2.0 XSD);
3. running the whole suite: the comparisons with GatingML truth, FlowJo workspaces and
   FlowKit's own counts must pass unchanged, and the QC-plot test that draws from the
   cache and afresh must give identical PNGs;
4. widening the pin in pyproject.toml and refreshing constraints.txt (``make lock``).

Checked against FlowKit 1.3.2 and its development branch (1.3.3b0), which keep all five.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit
    import pandas as pd
    from flowkit._models.gating_results import GatingResults  # noqa: F401 - re-exported

# Each internal, as named in the messages, with what ckpk needs it for.
INTERNALS: dict[str, str] = {
    "GatingStrategy._gate_tree": "walking the gate tree (ckpk.flow.strategy)",
    "GateNode.gate": "the gate object of a tree node",
    "GateNode.custom_gates": "sample-specific FlowJo gates of a tree node",
    "GatingStrategy._cached_preprocessed_events": "handing gated events to the QC plot",
    "GatingStrategy._preprocess_sample_events": "events in a gate's space for the QC plot",
    "flowkit._utils.xml_common.gml_schema": "wording GatingML schema violations",
    "flowkit._models.gating_results.GatingResults": "type annotations",
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


def cached_events(strategy: flowkit.GatingStrategy, sample_id: str) -> dict:
    """FlowKit's cache of one sample's compensated and transformed events, keyed
    ``(compensation, transform, channel index)``; empty when nothing is cached."""
    return _attribute(strategy, "GatingStrategy._cached_preprocessed_events").get(sample_id, {})


def restore_cached_events(strategy: flowkit.GatingStrategy, sample_id: str, cache: dict) -> None:
    """Put back a cache from :func:`cached_events`, so FlowKit reuses those events."""
    _attribute(strategy, "GatingStrategy._cached_preprocessed_events")[sample_id] = dict(cache)


def gate_space_events(
    strategy: flowkit.GatingStrategy, sample: flowkit.Sample, gate: object
) -> pd.DataFrame:
    """The sample's events for ``gate``'s dimensions, compensated and transformed exactly as
    FlowKit does before testing the gate (and cached, as gating caches them)."""
    preprocess = _attribute(strategy, "GatingStrategy._preprocess_sample_events")
    return preprocess(sample, gate, cache_events=True)


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
    for internal, kind in (
        ("GatingStrategy._gate_tree", None),
        ("GatingStrategy._cached_preprocessed_events", dict),
    ):
        value = getattr(strategy, internal.rsplit(".", 1)[1], None)
        if value is None or (kind is not None and not isinstance(value, kind)):
            problems.append(str(_missing(internal)))
    method = getattr(flowkit.GatingStrategy, "_preprocess_sample_events", None)
    if method is None or list(inspect.signature(method).parameters)[:4] != [
        "self",
        "sample",
        "gate",
        "cache_events",
    ]:
        problems.append(str(_missing("GatingStrategy._preprocess_sample_events")))
    problems += _missing_node_attributes(strategy)
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
