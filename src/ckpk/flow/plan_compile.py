"""Compiling a FlowKit gating strategy into a :class:`ckpk.flow.plan.GatingPlan`.

The one place that reads FlowKit's gate, dimension and transform classes. Every gate type
FlowKit gates with is compiled (rectangle, polygon, ellipsoid, quadrant, Boolean; ratio
and transformed dimensions). What FlowKit's engine would refuse or treat in its own way
is not compiled but named in ``fallback``, so that FlowKit gates such a strategy itself
and gives its own answer (e.g. a gate mixing two compensations, which FlowKit refuses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ckpk.flow._flowkit_compat import biex_lookup_table, gate_tree
from ckpk.flow.plan import Dimension, Gate, GatingPlan, Matrix, Quadrant, Transform, file_digest
from ckpk.flow.strategy import file_spillover_channels, iter_gates, required_dimensions


class Unsupported(Exception):
    """A part of the strategy the fast evaluator does not cover (the message says which)."""


def _comp(ref: str | None) -> str | None:
    return None if ref in (None, "uncompensated") else ref


def _transform(transform: object) -> Transform:
    import flowkit

    kinds = flowkit.transforms
    simple = {
        kinds.LinearTransform: ("flin", ("param_t", "param_a")),
        kinds.LogTransform: ("flog", ("param_t", "param_m")),
        kinds.HyperlogTransform: ("hyperlog", ("param_t", "param_w", "param_m", "param_a")),
        kinds.LogicleTransform: ("logicle", ("param_t", "param_w", "param_m", "param_a")),
        kinds.AsinhTransform: ("fasinh", ("param_t", "param_m", "param_a")),
        kinds.WSPLogTransform: ("wsp_log", ("offset", "decades")),
        kinds.RatioTransform: ("ratio", ("dimensions", "param_a", "param_b", "param_c")),
    }
    entry = simple.get(type(transform))
    if entry is not None:
        kind, names = entry
        params = {name: getattr(transform, name) for name in names}
        if kind == "ratio":
            params["dimensions"] = list(params["dimensions"])
        return Transform(kind, params)
    if type(transform) is kinds.WSPBiexTransform:
        x, y = biex_lookup_table(transform)
        return Transform("wsp_biex", {"x": x.tolist(), "y": y.tolist()})
    raise Unsupported(f"transform {type(transform).__name__}")


def _dimension(dim: object) -> Dimension:
    import flowkit

    bounds = {"low": getattr(dim, "min", None), "high": getattr(dim, "max", None)}
    comp = _comp(dim.compensation_ref)
    if isinstance(dim, flowkit.RatioDimension):
        if not (hasattr(dim, "min") and hasattr(dim, "max")):
            # FlowKit reads both bounds of a ratio dimension; one that lacks either fails.
            raise Unsupported("a ratio dimension without both bounds")
        return Dimension(None, dim.ratio_ref, dim.transformation_ref, comp, **bounds)
    if isinstance(dim, flowkit.QuadrantDivider):
        return Dimension(dim.dimension_ref, None, dim.transformation_ref, comp)
    return Dimension(dim.id, None, dim.transformation_ref, comp, **bounds)


def _gate_comp(dims: tuple[Dimension, ...]) -> str | None:
    refs = {d.comp for d in dims if d.comp is not None}
    if len(refs) > 1:
        raise Unsupported("a gate whose dimensions use different compensations")
    return next(iter(refs), None)


def _shape(gate: object, dims: tuple[Dimension, ...]) -> dict[str, Any]:
    """The gate-type specific part of a :class:`Gate`."""
    import flowkit

    gates = flowkit.gates
    if isinstance(gate, gates.RectangleGate):
        return {"kind": "rectangle", "complement": bool(gate.use_complement)}
    if isinstance(gate, gates.PolygonGate):
        vertices = np.asarray(gate.vertices, dtype=np.float64)
        if vertices.ndim != 2 or vertices.shape[1] != 2 or len(dims) != 2:
            raise Unsupported("a polygon gate that is not two-dimensional")
        return {
            "kind": "polygon",
            "complement": bool(gate.use_complement),
            "vertices": tuple(tuple(float(v) for v in row) for row in vertices),
        }
    if isinstance(gate, gates.EllipsoidGate):
        return {
            "kind": "ellipsoid",
            "mean": tuple(float(v) for v in gate.coordinates),
            "covariance": tuple(tuple(float(v) for v in row) for row in gate.covariance_matrix),
            "distance_square": float(gate.distance_square),
        }
    if isinstance(gate, gates.QuadrantGate):
        return {"kind": "quadrant", "quadrants": _quadrants(gate)}
    raise Unsupported(f"gate type {type(gate).__name__}")


def _quadrants(gate: object) -> tuple[Quadrant, ...]:
    divider = {dim.id: i for i, dim in enumerate(gate.dimensions)}
    quadrants = []
    for name, quadrant in gate.quadrants.items():
        if not quadrant.divider_refs:
            raise Unsupported("a quadrant without a divider")
        ranges = []
        for ref in quadrant.divider_refs:
            low, high = quadrant.get_divider_range(ref)
            ranges.append((divider[ref], low, high))
        quadrants.append(Quadrant(name, tuple(ranges)))
    return tuple(quadrants)


def _column_ids(dims: tuple[Dimension, ...]) -> list[str | None]:
    return [d.ratio if d.ratio is not None else d.channel for d in dims]


def _compile_gate(path: str, gate: object, parent: str) -> Gate:
    import flowkit

    name = path.rsplit("/", 1)[-1]
    if isinstance(gate, flowkit.gates.BooleanGate):
        refs = tuple(
            ("/" + "/".join((*ref["path"], ref["ref"])), bool(ref["complement"]))
            for ref in gate.gate_refs
        )
        if gate.type not in ("and", "or", "not") or not refs:
            raise Unsupported(f"Boolean gate type {gate.type}")
        return Gate(path, name, parent, "boolean", operation=gate.type, refs=refs)
    dims = tuple(_dimension(d) for d in gate.dimensions)
    columns = _column_ids(dims)
    if len(set(columns)) != len(columns):
        # FlowKit puts a gate's values in a table keyed by dimension id; a channel used
        # twice in one gate makes that table ambiguous, and FlowKit's answer is its own.
        raise Unsupported("a gate using the same dimension twice")
    return Gate(path, name, parent, comp=_gate_comp(dims), dims=dims, **_shape(gate, dims))


def _evaluation_order(gates: dict[str, Gate]) -> list[Gate]:
    """Every gate after its parent and after the gates a Boolean gate combines."""
    owner = {p: g.path for g in gates.values() for p in g.child_paths()}
    order: list[Gate] = []
    placed: set[str] = set()

    def place(path: str, trail: tuple[str, ...]) -> None:
        if path in placed:
            return
        if path in trail:
            raise Unsupported("Boolean gates that refer to each other in a circle")
        gate = gates[path]
        needs = [gate.parent, *(ref for ref, _ in gate.refs)]
        for need in needs:
            if need != "/root":
                if need not in owner:
                    raise Unsupported(f"a reference to gate {need}, which is not in the tree")
                place(owner[need], (*trail, path))
        placed.add(path)
        order.append(gate)

    for path in gates:
        place(path, ())
    return order


def _gates(strategy: object) -> tuple[list[Gate], list[str], dict[str, str]]:
    import flowkit

    compiled: dict[str, Gate] = {}
    paths: list[str] = []
    parents: dict[str, str] = {}
    for path, gate, parent in iter_gates(strategy):
        if isinstance(gate, flowkit.gates.Quadrant):
            paths.append(path)
            parents[path] = parent
            continue
        if not isinstance(gate, flowkit.gates.QuadrantGate):
            paths.append(path)
            parents[path] = parent
        compiled[path] = _compile_gate(path, gate, parent)
    return _evaluation_order(compiled), paths, parents


def _check_references(gates: list[Gate], transforms: dict[str, Transform]) -> None:
    """Every transform a gate names exists, and a ratio dimension names a ratio."""
    for gate in gates:
        for dim in gate.dims:
            if dim.transform is not None and dim.transform not in transforms:
                raise Unsupported(
                    f"gate {gate.path} names transform {dim.transform!r}, not defined"
                )
            if dim.ratio is not None and getattr(transforms.get(dim.ratio), "kind", "") != "ratio":
                raise Unsupported(
                    f"gate {gate.path} names ratio {dim.ratio!r}, not a ratio transform"
                )


def _custom_gate_samples(strategy: object) -> tuple[str, ...]:
    samples: set[str] = set()
    for node in gate_tree(strategy).descendants:
        samples.update(getattr(node, "custom_gates", {}).keys())
    return tuple(sorted(samples))


def compile_plan(strategy: object) -> GatingPlan:
    """The plan of a FlowKit ``GatingStrategy`` (as :func:`ckpk.flow.strategy.load_strategy`
    returns it). Parts the fast evaluator does not cover leave the gates empty and say why
    in ``fallback``; the plan then still serves the checks and the QC plot's labels."""
    source = str(getattr(strategy, "ckpk_source", ""))
    digest = file_digest(source) if source and Path(source).is_file() else ""
    fallback = None
    gates: list[Gate] = []
    paths, parents = [], {}
    transforms: dict[str, Transform] = {}
    try:
        gates, paths, parents = _gates(strategy)
        transforms = {key: _transform(t) for key, t in strategy.transformations.items()}
        _check_references(gates, transforms)
    except Unsupported as reason:
        fallback = str(reason)
    if fallback is not None:
        from ckpk.flow.strategy import gate_paths

        paths = gate_paths(strategy)
        parents = {p: parent for p, _gate, parent in iter_gates(strategy)}
    matrices = {
        key: Matrix(
            tuple(m.detectors),
            tuple(getattr(m, "fluorochromes", ())),
            tuple(tuple(float(v) for v in row) for row in np.asarray(m.matrix, dtype=float)),
        )
        for key, m in strategy.comp_matrices.items()
    }
    spectral = [key for key, m in strategy.comp_matrices.items() if not hasattr(m, "fluorochromes")]
    if spectral and fallback is None:
        fallback = f"spectral (unmixing) matrix {spectral[0]!r}"
    return GatingPlan(
        source=source,
        digest=digest,
        sample_group=getattr(strategy, "ckpk_sample_group", None),
        notes=tuple(getattr(strategy, "ckpk_notes", [])),
        gates=tuple(gates) if fallback is None else (),
        paths=tuple(paths),
        parents=dict(parents),
        required=tuple(required_dimensions(strategy)),
        matrices=matrices,
        transforms=transforms,
        file_spillover_channels=tuple(file_spillover_channels(strategy)),
        custom_gate_samples=_custom_gate_samples(strategy),
        fallback=fallback,
        strategy=strategy,
    )


def as_plan(strategy: Any) -> GatingPlan:
    """``strategy`` as a plan: a plan is returned as it is, a FlowKit strategy compiled."""
    if isinstance(strategy, GatingPlan):
        return strategy
    return compile_plan(strategy)
