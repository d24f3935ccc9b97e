"""Range decisions of rectangle and quadrant gates without transforming every event.

A range gate asks whether ``t(c) >= low`` and ``t(c) < high`` for a value ``c`` and the
dimension's transform ``t``. Logicle, hyperlog, asinh and linear scales only ever rise, so
the same question can be put to ``c`` itself against ``t⁻¹(bound)``, except for events so
close to it that the two ways of rounding could disagree. Those few (a *band* around each
bound, wide enough that ``t`` is checked to land on the right side of the bound at both of
its edges, and widened by the compensation's rounding bound) get their value transformed
exactly as FlowKit does; every other event is decided by a comparison of raw numbers. At
a million events this spares most of the logicle transforms, the largest cost of gating.
Other transforms, and ratio dimensions, are transformed for every event of the parent.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

import numpy as np

from ckpk.flow import guard, transforms
from ckpk.flow.event_space import EventSpace
from ckpk.flow.plan import Dimension, Gate, Transform

_RISING = ("logicle", "hyperlog", "fasinh")


@dataclass
class Comparisons:
    """One dimension's decisions for the parent's events: ``t(c) >= b`` and ``t(c) < b``
    for each bound ``b``."""

    at_least: dict[float, np.ndarray]
    below: dict[float, np.ndarray]


def _rising(spec: Transform | None) -> bool:
    if spec is None:
        return True
    if spec.kind == "flin":
        return spec.params["param_t"] + spec.params["param_a"] > 0
    return spec.kind in _RISING


@functools.lru_cache(maxsize=256)
def _cutoff(kind: str, params: str, bound: float) -> tuple[float, float] | None:
    """(t⁻¹(bound), half-width): ``t`` lies clearly below ``bound`` at the band's lower edge
    and clearly above it at the upper edge; None when no such band is found."""
    spec = Transform(kind, json.loads(params))
    with np.errstate(all="ignore"):
        centre = float(transforms.inverse(spec, np.array([bound]))[0])
        if not math.isfinite(centre):
            return None
        margin = 1e-9 * (abs(bound) + 1.0)
        width = 1e-9 * (abs(centre) + 1.0)
        for _ in range(15):
            low, high = transforms.apply(spec, np.array([centre - width, centre + width]))
            if low < bound - margin and high > bound + margin:
                return centre, width
            width *= 10.0
    return None


def cutoff(spec: Transform | None, bound: float) -> tuple[float, float] | None:
    if spec is None:
        return float(bound), 0.0
    return _cutoff(spec.kind, json.dumps(spec.params, sort_keys=True), float(bound))


def compare(
    space: EventSpace,
    gate: Gate,
    dim: Dimension,
    parent: np.ndarray,
    bounds: list[float],
    check: bool,
) -> Comparisons:
    """Decisions for every bound of ``dim`` on the ``parent`` events, equal to FlowKit's
    comparisons of transformed values; with ``check``, rounding is proven harmless
    (:func:`ckpk.flow.guard.check_threshold`)."""
    spec = space.transform(dim.transform)
    found = {b: cutoff(spec, b) for b in bounds} if dim.ratio is None and _rising(spec) else {}
    if not bounds or None in found.values() or len(found) != len(bounds):
        values = space.values(gate, dim, parent)
        if check:
            guard.check_threshold(space, gate, dim, parent, values, bounds)
        return Comparisons({b: values >= b for b in bounds}, {b: values < b for b in bounds})
    data = space.data_values(gate, dim)[parent]
    rounding = guard.file_rounding(space, gate, dim)
    at_least, below = {}, {}
    # NaN and infinite values are transformed too: what a transform makes of them (NaN,
    # or its top of scale) is for the transform to say.
    near = ~np.isfinite(data)
    for bound in bounds:
        centre, width = found[bound]
        reach = width + rounding
        with np.errstate(invalid="ignore"):
            above, under = data > centre + reach, data < centre - reach
        at_least[bound], below[bound] = above, under
        near |= ~(above | under)
    chosen = np.flatnonzero(near)
    if chosen.size:
        values = space.values(gate, dim, parent[chosen])
        for bound in bounds:
            at_least[bound][chosen] = values >= bound
            below[bound][chosen] = values < bound
        if check:
            guard.check_threshold(space, gate, dim, parent[chosen], values, bounds)
    return Comparisons(at_least, below)


def range_gate(space: EventSpace, gate: Gate, parent: np.ndarray, check: bool) -> dict:
    """Members of a rectangle gate (``{path: mask}``) or of each quadrant of a quadrant
    gate, as masks over ``parent``."""
    if gate.kind == "quadrant":
        ranges = {f"{gate.path}/{q.name}": list(q.ranges) for q in gate.quadrants}
    else:
        ranges = {gate.path: [(i, d.low, d.high) for i, d in enumerate(gate.dims)]}
    bounds: list[set[float]] = [set() for _ in gate.dims]
    for limits in ranges.values():
        for position, low, high in limits:
            bounds[position] |= {v for v in (low, high) if v is not None}
    decided = [
        compare(space, gate, dim, parent, sorted(b), check) if b else None
        for dim, b in zip(gate.dims, bounds, strict=True)
    ]
    masks = {}
    for path, limits in ranges.items():
        inside = np.ones(len(parent), dtype=bool)
        for position, low, high in limits:
            if low is not None:
                inside &= decided[position].at_least[low]
            if high is not None:
                inside &= decided[position].below[high]
        masks[path] = np.logical_not(inside) if gate.complement else inside
    return masks
