"""The strategy's transforms, applied from the plan's parameters as FlowKit applies them.

Each function is FlowKit 1.3's ``apply`` of the same transform class, operation for
operation (the same flowutils, numpy and scipy calls with the same operands), so a value
transformed here equals FlowKit's bit for bit; tests/test_flow_fast.py checks every kind on
every event of real files. Transforms act on each value alone, which is what lets the
evaluator transform only the events that reach a gate.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np

from ckpk.flow.plan import Transform

# Interpolators of FlowJo biexponential tables, by the id of their spec (kept alive here).
_BIEX: dict[tuple[int, bool], tuple[Transform, object]] = {}


def _biex(spec: Transform, values: np.ndarray, inverse: bool = False) -> np.ndarray:
    entry = _BIEX.get((id(spec), inverse))
    if entry is None or entry[0] is not spec:
        from scipy import interpolate

        x, y = np.asarray(spec.params["x"]), np.asarray(spec.params["y"])
        if inverse:
            x, y = y, x
        # FlowKit's WSPBiexTransform builds exactly this interpolator.
        function = interpolate.interp1d(
            x, y, kind="linear", bounds_error=False, fill_value=(np.min(y), np.max(y))
        )
        entry = _BIEX[(id(spec), inverse)] = (spec, function)
    return entry[1](values)


def apply(spec: Transform, values: np.ndarray) -> np.ndarray:
    """Transform float64 ``values`` (1-D) as FlowKit's transform of this kind does."""
    import flowutils

    p = spec.params
    kind = spec.kind
    if kind == "flin":
        return (values + p["param_a"]) / (p["param_t"] + p["param_a"])
    if kind == "logicle":
        return flowutils.transforms.logicle(
            values, None, t=p["param_t"], m=p["param_m"], w=p["param_w"], a=p["param_a"]
        )
    if kind == "hyperlog":
        return flowutils.transforms.hyperlog(
            values, None, t=p["param_t"], m=p["param_m"], w=p["param_w"], a=p["param_a"]
        )
    if kind == "fasinh":
        return flowutils.transforms.asinh(
            values, None, t=p["param_t"], m=p["param_m"], a=p["param_a"]
        )
    if kind == "flog":
        return flowutils.transforms.log(values, None, t=p["param_t"], m=p["param_m"])
    if kind == "wsp_log":
        new = np.copy(values)
        new[new < p["offset"]] = p["offset"]
        return 1.0 / p["decades"] * (np.log10(new) - np.log10(p["offset"]))
    if kind == "wsp_biex":
        return _biex(spec, values)
    raise ValueError(f"transform kind {kind!r} is applied to single channels only")


def ratio(spec: Transform, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """FlowKit's RatioTransform on two raw (uncompensated) channels."""
    p = spec.params
    return p["param_a"] * ((numerator - p["param_b"]) / (denominator - p["param_c"]))


def inverse(spec: Transform, values: np.ndarray) -> np.ndarray:
    """Scale values back to data values (for axis labels; not used to gate)."""
    import flowutils

    p = spec.params
    kind = spec.kind
    if kind == "flin":
        return values * (p["param_t"] + p["param_a"]) - p["param_a"]
    if kind in ("logicle", "hyperlog"):
        function = getattr(flowutils.transforms, f"{kind}_inverse")
        return function(
            values, None, t=p["param_t"], m=p["param_m"], w=p["param_w"], a=p["param_a"]
        )
    if kind == "fasinh":
        return flowutils.transforms.asinh_inverse(
            values, None, t=p["param_t"], m=p["param_m"], a=p["param_a"]
        )
    if kind == "flog":
        return flowutils.transforms.log_inverse(values, None, t=p["param_t"], m=p["param_m"])
    if kind == "wsp_log":
        return 10 ** (values * p["decades"] + np.log10(p["offset"]))
    if kind == "wsp_biex":
        return _biex(spec, values, inverse=True)
    raise ValueError(f"transform kind {kind!r} has no inverse")


def is_log_like(spec: Transform | None) -> bool:
    """True for scales whose axes read best in decades (logicle, asinh, log, ...)."""
    return spec is not None and spec.kind in (
        "logicle",
        "hyperlog",
        "fasinh",
        "flog",
        "wsp_log",
        "wsp_biex",
    )


@functools.lru_cache(maxsize=64)
def _slope_bound(kind: str, params: str) -> float:
    spec = Transform(kind, json.loads(params))
    grid = np.concatenate([-np.logspace(8, -3, 1200), [0.0], np.logspace(-3, 8, 1200)])
    with np.errstate(all="ignore"):
        values = apply(spec, grid)
        slopes = np.abs(np.diff(values) / np.diff(grid))
    slopes = slopes[np.isfinite(slopes)]
    return 4.0 * float(slopes.max()) if slopes.size else math.inf


def slope_bound(spec: Transform | None) -> float:
    """A bound on how fast the transform moves its output per unit of input: 1 without a
    transform, four times the steepest slope seen over ±1e8 otherwise (inf for a scale
    whose slope has no bound, such as a plain logarithm near 0)."""
    if spec is None:
        return 1.0
    if spec.kind == "flog":
        return math.inf
    return _slope_bound(spec.kind, json.dumps(spec.params, sort_keys=True))
