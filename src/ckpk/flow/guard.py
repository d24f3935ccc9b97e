"""Proof that the fast evaluator's rounding cannot change a gate decision.

Two steps of the fast path round differently from FlowKit in the last bits of a value:
compensation (the inverse of the spillover matrix times the events, where FlowKit solves
the linear system) and the matrix product inside an ellipsoid test (FlowKit computes it
over all events, the fast path over the parent's). Every other step does the very same
floating-point operations on the same values, so it agrees with FlowKit exactly.

Both methods are within a few units in the last place of the exact result; this module
allows a million times more: a compensated value ``c`` may lie anywhere in ``c ± δ`` with
``δ = 1e-9 · (|x| · (|S⁻¹| + |S⁻¹||S||S⁻¹|))`` for raw values ``x`` and spillover ``S``
(the classical error bounds of both methods have this form). An event whose gate
decision could differ anywhere in that range is *borderline*, and its file is gated by
FlowKit instead (:class:`ckpk.flow.event_space.NeedsFlowKit`). Events are screened first
with one bound for the whole file and the transform's steepest slope, then the few
remaining candidates are checked with their own bound through the transform itself.
"""

from __future__ import annotations

import numpy as np

from ckpk.flow import transforms
from ckpk.flow.event_space import EventSpace, NeedsFlowKit
from ckpk.flow.plan import Dimension, Gate

TOLERANCE = 1e-9


def _perturbable(space: EventSpace, gate: Gate, dim: Dimension) -> tuple | None:
    """(compensation, position) of a compensated dimension; None for exact values."""
    if dim.ratio is not None:
        return None
    compensation = space.compensation(gate.comp)
    if compensation is None:
        return None
    position = compensation.position(space.channel(dim))
    return None if position is None else (compensation, position)


def _file_delta(space: EventSpace, compensation: object, position: int) -> float:
    """One rounding bound for every event of the file (largest raw values)."""
    largest = compensation.largest
    if largest is None:
        with np.errstate(invalid="ignore"):
            largest = np.array(
                [np.nanmax(np.abs(space.raw(i)), initial=0.0) for i in compensation.indices]
            )
        compensation.largest = largest
    return TOLERANCE * float(largest @ compensation.bound[:, position])


def file_rounding(space: EventSpace, gate: Gate, dim: Dimension) -> float:
    """How far (in data units, before the transform) rounding could move this dimension's
    value of any event of the file: 0 for values computed exactly as FlowKit does."""
    found = _perturbable(space, gate, dim)
    return 0.0 if found is None else _file_delta(space, *found)


def _event_delta(
    space: EventSpace, compensation: object, position: int, events: np.ndarray
) -> np.ndarray:
    raw = np.column_stack([np.abs(space.raw(i)[events]) for i in compensation.indices])
    return TOLERANCE * (raw @ compensation.bound[:, position])


def _windows(space: EventSpace, gate: Gate) -> list[float]:
    """Per dimension: how far (in gate units) rounding could move a value, file-wide."""
    windows = []
    for dim in gate.dims:
        found = _perturbable(space, gate, dim)
        if found is None:
            windows.append(0.0)
            continue
        slope = transforms.slope_bound(space.transform(dim.transform))
        with np.errstate(invalid="ignore"):
            windows.append(slope * _file_delta(space, *found))
    return windows


def _half_widths(
    space: EventSpace, gate: Gate, events: np.ndarray, values: list[np.ndarray]
) -> list[np.ndarray]:
    """Per dimension and event: the largest move of the gate value within c ± δ (inf when
    the value could turn NaN or appear from NaN)."""
    widths = []
    for dim, value in zip(gate.dims, values, strict=True):
        found = _perturbable(space, gate, dim)
        if found is None:
            widths.append(np.zeros(len(events)))
            continue
        delta = _event_delta(space, *found, events)
        data = space.data_values(gate, dim)[events]
        spec = space.transform(dim.transform)
        with np.errstate(all="ignore"):
            low, high = (
                (data - delta, data + delta)
                if spec is None
                else (transforms.apply(spec, data - delta), transforms.apply(spec, data + delta))
            )
            width = np.maximum(np.abs(high - value), np.abs(value - low))
        nan_change = np.isnan(low) | np.isnan(high) | np.isnan(value)
        nan_change &= ~(np.isnan(low) & np.isnan(high) & np.isnan(value))
        width[nan_change] = np.inf
        widths.append(width)
    return widths


def _bounds(gate: Gate) -> list[list[float]]:
    """Finite thresholds per dimension of a rectangle or quadrant gate."""
    if gate.kind == "quadrant":
        found: list[set[float]] = [set() for _ in gate.dims]
        for quadrant in gate.quadrants:
            for divider, low, high in quadrant.ranges:
                found[divider] |= {v for v in (low, high) if v is not None}
        return [sorted(values) for values in found]
    return [[v for v in (dim.low, dim.high) if v is not None] for dim in gate.dims]


def _columns(widths: list, count: int) -> np.ndarray:
    """Per-dimension widths (numbers or arrays) as an events x dimensions array."""
    return np.column_stack([np.broadcast_to(np.asarray(w, dtype=float), (count,)) for w in widths])


def _near_bounds(values: list[np.ndarray], bounds: list[list[float]], widths: list) -> np.ndarray:
    moves = _columns(widths, len(values[0]))
    near = np.zeros(len(values[0]), dtype=bool)
    for value, thresholds, move in zip(values, bounds, moves.T, strict=True):
        if not thresholds:
            continue
        with np.errstate(invalid="ignore"):
            for threshold in thresholds:
                near |= (move > 0) & (np.abs(value - threshold) <= move)
        near |= np.isinf(move)
    return near


def _edge_distance(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Distance from each point to the polygon's outline (NaN points: 0)."""
    distance = np.full(len(points), np.inf)
    for start, end in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        edge = end - start
        length = float(edge @ edge)
        if length > 0:
            along = np.clip(((points - start) @ edge) / length, 0.0, 1.0)
            nearest = start + np.multiply.outer(along, edge)
        else:
            nearest = start
        distance = np.minimum(distance, np.hypot(*(points - nearest).T))
    return np.nan_to_num(distance, nan=0.0)


def _near_polygon(gate: Gate, values: list[np.ndarray], widths: list) -> np.ndarray:
    reach = np.hypot.reduce(_columns(widths, len(values[0])), axis=1)
    distance = _edge_distance(np.column_stack(values), np.asarray(gate.vertices))
    return (reach > 0) & (distance <= reach)


def _near_ellipsoid(gate: Gate, values: list[np.ndarray], widths: list) -> np.ndarray:
    """Mahalanobis distance within rounding (of the product, and of moved values) of the
    boundary: m(p + d) - m(p) = p'(A + A')d + d'Ad, bounded by norms."""
    centred = np.column_stack(values) - np.asarray(gate.mean)
    inverse = np.linalg.inv(np.asarray(gate.covariance, dtype=float))
    distance = ((centred @ inverse) * centred).sum(axis=1)
    rounding = TOLERANCE * ((np.abs(centred) @ np.abs(inverse)) * np.abs(centred)).sum(axis=1)
    rounding += TOLERANCE * abs(gate.distance_square)
    step = np.hypot.reduce(_columns(widths, len(centred)), axis=1)
    gradient = np.hypot.reduce(centred @ (inverse + inverse.T), axis=1)
    curvature = float(np.linalg.norm(inverse, 2))
    with np.errstate(invalid="ignore"):
        reach = rounding + gradient * step + curvature * step**2
        return (np.abs(distance - gate.distance_square) <= reach) | np.isinf(step)


def check_threshold(
    space: EventSpace,
    gate: Gate,
    dim: Dimension,
    events: np.ndarray,
    values: np.ndarray,
    bounds: list[float],
) -> None:
    """:func:`check` for one dimension of a rectangle or quadrant gate: ``events`` are the
    events whose values lie near a bound (the others are decided far from any)."""
    if not len(events) or _perturbable(space, gate, dim) is None:
        return
    solo = Gate(gate.path, gate.name, gate.parent, "rectangle", gate.comp, (dim,))
    (width,) = _half_widths(space, solo, events, [values])
    if _near_bounds([values], [bounds], [width]).any():
        raise NeedsFlowKit(
            f"an event lies within rounding distance of gate {gate.path}'s boundary, "
            "so FlowKit's own arithmetic decides it"
        )


def _near(gate: Gate, values: list[np.ndarray], widths: list) -> np.ndarray:
    if gate.kind == "polygon":
        return _near_polygon(gate, values, widths)
    if gate.kind == "ellipsoid":
        return _near_ellipsoid(gate, values, widths)
    return _near_bounds(values, _bounds(gate), widths)


def check(space: EventSpace, gate: Gate, events: np.ndarray, values: list[np.ndarray]) -> None:
    """Raise :class:`NeedsFlowKit` when rounding could move an event of ``events`` across
    ``gate``'s boundary; ``values`` are the gate's dimension values for those events."""
    if gate.kind == "boolean" or not len(events):
        return
    windows = _windows(space, gate)
    if gate.kind != "ellipsoid" and not any(windows):
        return  # the same operations as FlowKit on the same values: nothing to prove
    candidates = np.flatnonzero(_near(gate, values, windows))
    if not candidates.size:
        return
    chosen = [value[candidates] for value in values]
    widths = _half_widths(space, gate, events[candidates], chosen)
    if _near(gate, chosen, widths).any():
        raise NeedsFlowKit(
            f"an event lies within rounding distance of gate {gate.path}'s boundary, "
            "so FlowKit's own arithmetic decides it"
        )
