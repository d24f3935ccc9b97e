"""Axes of the gate QC plots: ranges that show the population, ticks in data units.

Gates live in the strategy's transformed space (0–1 for logicle and linear scales), which
says little to a scientist. Ticks are therefore placed at data values and labelled with
them, as FlowJo labels its axes: fluorescence in decades (0, 10², 10³, 10⁴, 10⁵ and minor
ticks between) on logicle, asinh, hyperlog, log and biexponential scales, scatter in
thousands (50K, 100K) on linear ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ckpk.flow import transforms
from ckpk.flow.plan import Transform

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Ticks:
    major: list[float]  # positions on the gate's scale
    labels: list[str]
    minor: list[float]


def _decade_label(value: float) -> str:
    if value == 0:
        return "0"
    exponent = round(math.log10(abs(value)))
    sign = "-" if value < 0 else ""
    return f"{sign}10{str(exponent).translate(SUPERSCRIPT)}"


def _forward(spec: Transform, values: list[float]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(transforms.apply(spec, np.asarray(values, dtype=float)), dtype=float)


def _within(positions: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    low, high = limits
    return np.isfinite(positions) & (positions >= low) & (positions <= high)


def decade_ticks(spec: Transform, limits: tuple[float, float]) -> Ticks:
    """Ticks at 0 and ±10^k (labelled), and at ±m·10^k (m = 2..9) between them."""
    decades = [0.0] + [s * 10.0**k for k in range(0, 9) for s in (1.0, -1.0)]
    positions = _forward(spec, decades)
    keep = _within(positions, limits)
    # Labels closer than a fourteenth of the axis would overlap. 0 comes first, then the
    # positive decades from the top down, then the negative ones: near zero, where a
    # logicle scale squeezes the low decades together, the higher ones win.
    candidates = [
        (float(p), _decade_label(v), (v != 0, v < 0, -abs(v)))
        for p, v, k in zip(positions, decades, keep, strict=True)
        if k
    ]
    span = limits[1] - limits[0]
    kept: list[tuple[float, str]] = []
    for position, label, _rank in sorted(candidates, key=lambda c: c[2]):
        if all(abs(position - other) > span / 14 for other, _ in kept):
            kept.append((position, label))
    kept.sort()
    minors = [s * m * 10.0**k for k in range(0, 8) for m in range(2, 10) for s in (1.0, -1.0)]
    minor_positions = _forward(spec, minors)
    # Near 0 a logicle scale packs the low decades' minor ticks into a smudge: keep those
    # at least a hundredth of the axis from the last one kept.
    minor: list[float] = []
    for position in sorted(float(p) for p in minor_positions[_within(minor_positions, limits)]):
        if not minor or position - minor[-1] > span / 100:
            minor.append(position)
    return Ticks([p for p, _ in kept], [label for _, label in kept], minor)


def _thousands(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}K"
    return f"{value:g}"


def linear_ticks(spec: Transform | None, limits: tuple[float, float]) -> Ticks:
    """About five round data values over the axis (in K above 1,000)."""
    from matplotlib.ticker import MaxNLocator

    if spec is None:
        values = MaxNLocator(5).tick_values(*limits)
        keep = values[(values >= limits[0]) & (values <= limits[1])]
        return Ticks([float(v) for v in keep], [_thousands(float(v)) for v in keep], [])
    with np.errstate(all="ignore"):
        data = transforms.inverse(spec, np.asarray(limits, dtype=float))
    if not np.all(np.isfinite(data)):
        return linear_ticks(None, limits)
    values = MaxNLocator(5).tick_values(float(min(data)), float(max(data)))
    positions = _forward(spec, list(values))
    keep = _within(positions, limits)
    return Ticks(
        [float(p) for p in positions[keep]],
        [_thousands(float(v)) for v in values[keep]],
        [],
    )


def axis_ticks(spec: Transform | None, limits: tuple[float, float]) -> Ticks:
    """Ticks for one axis of a gate panel, in data units."""
    if transforms.is_log_like(spec):
        ticks = decade_ticks(spec, limits)
        if len(ticks.major) >= 2:
            return ticks
    return linear_ticks(spec, limits)


def view_limits(values: np.ndarray, gate_values: list[float]) -> tuple[float, float]:
    """An axis range that shows the population: the bulk of the events (0.5th to 99.5th
    percentile, padded), widened to take in the gate's coordinates only where they lie
    within one population width of it, so that a gate drawn far beyond the events (a
    polygon corner at the top of the scale) does not squeeze them into a corner."""
    finite = values[np.isfinite(values)]
    gate_points = [float(v) for v in gate_values if v is not None and math.isfinite(float(v))]
    if finite.size:
        low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    elif gate_points:
        low, high = min(gate_points), max(gate_points)
    else:
        return 0.0, 1.0
    span = high - low if high > low else max(abs(high), 1.0) * 0.1
    reach_low, reach_high = low - span, high + span
    near = [v for v in gate_points if reach_low <= v <= reach_high]
    low, high = min([low, *near]), max([high, *near])
    span = high - low if high > low else max(abs(high), 1.0) * 0.1
    return low - 0.08 * span, high + 0.08 * span
