"""What a gate QC panel shows: which panels, their axes and the gate outlines.

The parts of a panel that are the same for every file of a batch (:mod:`ckpk.flow.qc_plot`
draws them once): axes in data units (:mod:`ckpk.flow.qc_axes`), axis labels, and the gate
drawn in red, polygon, rectangle, ellipse, range lines or quadrant dividers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.patches import Ellipse, Polygon, Rectangle

from ckpk.flow.evaluate import ROOT
from ckpk.flow.plan import Gate, GatingPlan, Transform
from ckpk.flow.qc_axes import axis_ticks

GATE_COLOR = "#d62728"
_OUTLINE = {"edgecolor": GATE_COLOR, "facecolor": "none", "linewidth": 1.6}
_LINE = {"color": GATE_COLOR, "linewidth": 1.4}


@dataclass(frozen=True)
class Panel:
    """What one panel draws: a gate, or a text-only entry for a path without one."""

    path: str
    parent: str
    gate: Gate | None


def panels(plan: GatingPlan) -> list[Panel]:
    """One panel per gate in tree order; a quadrant gate gets one panel for its quadrants."""
    owner = {p: g for g in plan.gates for p in g.child_paths()}
    result: list[Panel] = []
    seen: set[str] = set()
    for path in plan.paths:
        gate = owner.get(path)
        if gate is not None and gate.kind == "quadrant":
            if gate.path not in seen:
                seen.add(gate.path)
                result.append(Panel(gate.path, gate.parent, gate))
            continue
        result.append(Panel(path, plan.parents[path], gate))
    return result


def short(path: str) -> str:
    return path.rsplit("/", 1)[-1] if path != ROOT else "all events"


def thin(index: np.ndarray, max_events: int) -> np.ndarray:
    """Deterministic subsample: evenly spaced events, so re-runs draw identical plots."""
    if index.size <= max_events:
        return index
    return index[np.linspace(0, index.size - 1, max_events).astype(np.int64)]


def axis_label(space: Any, gate: Gate, position: int) -> str:
    """ "Comp-CD3 (PerCP-Cy5-5-A)": stain and channel, and whether it was compensated."""
    dim = gate.dims[position]
    if dim.ratio is not None:
        names = space.plan.transforms[dim.ratio].params["dimensions"]
        return f"{names[0]} / {names[1]}"
    source = space.source
    label = dim.channel
    if dim.channel in source.pnn_labels:
        index = source.pnn_labels.index(dim.channel)
        stain = source.pns_labels[index].strip()
        if stain and stain != dim.channel:
            label = f"{stain} ({dim.channel})"
        compensation = space.compensation(gate.comp)
        if compensation is not None and index in compensation.indices:
            label = f"Comp-{label}"
    return label


def gate_values(gate: Gate) -> list[list[float]]:
    """Per dimension, the gate coordinates the axes should take in when near the events."""
    values: list[list[float]] = [[] for _ in gate.dims]
    if gate.kind == "polygon":
        for vertex in gate.vertices:
            values[0].append(vertex[0])
            values[1].append(vertex[1])
    elif gate.kind == "ellipsoid":
        for i in range(len(gate.dims)):
            half = math.sqrt(max(gate.covariance[i][i] * gate.distance_square, 0.0))
            values[i] += [gate.mean[i] - half, gate.mean[i] + half]
    elif gate.kind == "quadrant":
        for quadrant in gate.quadrants:
            for divider, low, high in quadrant.ranges:
                values[divider] += [v for v in (low, high) if v is not None]
    else:
        for i, dim in enumerate(gate.dims):
            values[i] += [v for v in (dim.low, dim.high) if v is not None]
    return values


def _minor_marks(ax: Any, axis: str, positions: list[float]) -> None:
    """Minor ticks as one line of short marks: matplotlib makes three artists per tick,
    which for the ~40 minor decade ticks of an axis cost more than the whole panel."""
    if not positions:
        return
    if axis == "x":
        transform, xy, marker = ax.get_xaxis_transform(), (positions, [0.0] * len(positions)), 3
    else:
        transform, xy, marker = ax.get_yaxis_transform(), ([0.0] * len(positions), positions), 0
    ax.plot(
        *xy,
        transform=transform,
        linestyle="none",
        marker=marker,
        markersize=2.0,
        markeredgewidth=0.6,
        color="black",
        clip_on=False,
    )


def set_axis(
    ax: Any, axis: str, spec: Transform | None, label: str, limits: tuple[float, float]
) -> None:
    """Limits, ticks in data units and the label of one axis of a panel."""
    ticks = axis_ticks(spec, limits)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_ticks(ticks.major, labels=ticks.labels)
    _minor_marks(ax, axis, ticks.minor)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(limits)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label, fontsize=7)


def draw_gate(ax: Any, gate: Gate, x_lim: tuple, y_lim: tuple | None) -> list[Artist]:
    """The gate's outline on ``ax`` (in the gate's own units); returns its artists."""
    before = {id(a) for a in ax.get_children()}
    if gate.kind == "polygon" and y_lim is not None:
        # add_artist, not add_patch: the limits are fixed, and add_patch would measure the
        # outline segment by segment to autoscale them.
        ax.add_artist(Polygon([v[:2] for v in gate.vertices], closed=True, **_OUTLINE))
    elif gate.kind == "ellipsoid" and y_lim is not None:
        _draw_ellipse(ax, gate)
    elif gate.kind == "quadrant":
        for divider, low, high in sorted({r for q in gate.quadrants for r in q.ranges}, key=str):
            line = ax.axvline if divider == 0 else ax.axhline
            if divider < (2 if y_lim is not None else 1):
                for value in (low, high):
                    if value is not None:
                        line(value, **_LINE)
    elif gate.kind == "rectangle":
        _draw_rectangle(ax, gate, x_lim, y_lim)
    if len(gate.dims) > 2 and gate.kind != "ellipsoid":
        note(ax, f"{len(gate.dims)}-D gate: first two dimensions shown")
    return [a for a in ax.get_children() if id(a) not in before]


def _draw_ellipse(ax: Any, gate: Gate) -> None:
    if len(gate.dims) > 2:
        note(ax, "3-D ellipsoid: outline not drawn")
        return
    covariance = np.asarray(gate.covariance, dtype=float)
    values, vectors = np.linalg.eigh(covariance)
    order = values.argsort()[::-1]
    values, vectors = values[order], vectors[:, order]
    angle = math.degrees(math.atan2(vectors[1, 0], vectors[0, 0]))
    width, height = 2.0 * np.sqrt(np.clip(values, 0, None) * gate.distance_square)
    ax.add_artist(Ellipse(tuple(gate.mean[:2]), width, height, angle=angle, **_OUTLINE))


def _draw_rectangle(ax: Any, gate: Gate, x_lim: tuple, y_lim: tuple | None) -> None:
    x = gate.dims[0]
    left = x_lim[0] if x.low is None else x.low
    right = x_lim[1] if x.high is None else x.high
    y = None
    if y_lim is None:
        ax.axvspan(left, right, color=GATE_COLOR, alpha=0.12)
    else:
        y = gate.dims[1]
        bottom = y_lim[0] if y.low is None else y.low
        top = y_lim[1] if y.high is None else y.high
        if None not in (x.low, x.high, y.low, y.high):
            ax.add_artist(Rectangle((left, bottom), right - left, top - bottom, **_OUTLINE))
            return
        # Open-ended (a threshold): shade the inside, draw the bounds.
        ax.add_artist(
            Rectangle(
                (left, bottom),
                right - left,
                top - bottom,
                facecolor=GATE_COLOR,
                alpha=0.08,
                edgecolor="none",
            )
        )
    for value in (x.low, x.high):
        if value is not None:
            ax.axvline(value, **_LINE)
    for value in (y.low, y.high) if y is not None else ():
        if value is not None:
            ax.axhline(value, **_LINE)


def note(ax: Any, text: str) -> None:
    ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7, color=GATE_COLOR)
