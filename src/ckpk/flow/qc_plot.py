"""Gate QC plots: one PNG per FCS file, one panel per gate.

Each panel shows the gate's parent events in the space the gate is drawn in (compensated
and transformed as the strategy says) as a density plot (a 2-D histogram, computed with
numpy and drawn as one image) or a histogram, with the gate on top in red: polygon,
rectangle, ellipse, range lines or quadrant dividers. Axes are labelled in data units,
fluorescence in decades as FlowJo shows it (:mod:`ckpk.flow.qc_axes`), and each panel is
scaled to its parent's events, so that the population fills it. The title gives the count
and % of parent; Boolean gates get a text panel.

The values come from the gating itself (:class:`ckpk.flow.event_space.EventSpace`): nothing
is compensated or transformed a second time. Nothing from the file's free-text keywords
is drawn (docs/rules.md, Bad input): only the file label, channel names (PnN/PnS), counts
and the compensation used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Polygon, Rectangle

from ckpk.flow.evaluate import ROOT
from ckpk.flow.gating import GatingOutcome, gate_events
from ckpk.flow.plan import Gate, GatingPlan
from ckpk.flow.plan_compile import as_plan
from ckpk.flow.qc_axes import axis_ticks, view_limits

GATE_COLOR = "#d62728"
BINS = 128
_OUTLINE = {"edgecolor": GATE_COLOR, "facecolor": "none", "linewidth": 1.6}


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


def _thin(index: np.ndarray, max_events: int) -> np.ndarray:
    """Deterministic subsample: evenly spaced events, so re-runs draw identical plots."""
    if index.size <= max_events:
        return index
    return index[np.linspace(0, index.size - 1, max_events).astype(np.int64)]


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1] if path != ROOT else "all events"


def _axis_label(space: Any, gate: Gate, position: int) -> str:
    dim = gate.dims[position]
    if dim.ratio is not None:
        names = space.plan.transforms[dim.ratio].params["dimensions"]
        return f"{names[0]} / {names[1]}"
    source = space.source
    label = dim.channel
    if dim.channel in source.pnn_labels:
        stain = source.pns_labels[source.pnn_labels.index(dim.channel)].strip()
        if stain and stain != dim.channel:
            label = f"{stain} ({dim.channel})"
    if space.compensation(gate.comp) is not None and dim.channel in source.pnn_labels:
        index = source.pnn_labels.index(dim.channel)
        if index in space.compensation(gate.comp).indices:
            label = f"Comp-{label}"
    return label


def _gate_values(gate: Gate) -> list[list[float]]:
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


def _set_axis(ax: Any, axis: str, space: Any, gate: Gate, position: int, limits: tuple) -> None:
    spec = space.transform(gate.dims[position].transform)
    ticks = axis_ticks(spec, limits)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_ticks(ticks.major, labels=ticks.labels)
    _minor_marks(ax, axis, ticks.minor)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(limits)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(
        _axis_label(space, gate, position), fontsize=7
    )


def _draw_gate(ax: Any, gate: Gate, x_lim: tuple, y_lim: tuple | None) -> None:
    if gate.kind == "polygon" and y_lim is not None:
        # add_artist, not add_patch: the limits are fixed, and add_patch would measure the
        # outline segment by segment to autoscale them.
        ax.add_artist(Polygon([v[:2] for v in gate.vertices], closed=True, **_OUTLINE))
    elif gate.kind == "ellipsoid" and y_lim is not None:
        _draw_ellipse(ax, gate)
    elif gate.kind == "quadrant":
        for divider, low, high in {r for q in gate.quadrants for r in q.ranges}:
            line = ax.axvline if divider == 0 else ax.axhline
            if divider < (2 if y_lim is not None else 1):
                for value in (low, high):
                    if value is not None:
                        line(value, color=GATE_COLOR, linewidth=1.4)
    elif gate.kind == "rectangle":
        _draw_rectangle(ax, gate, x_lim, y_lim)


def _draw_ellipse(ax: Any, gate: Gate) -> None:
    if len(gate.dims) > 2:
        _note(ax, "3-D ellipsoid: outline not drawn")
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
            ax.axvline(value, color=GATE_COLOR, linewidth=1.4)
    for value in (y.low, y.high) if y is not None else ():
        if value is not None:
            ax.axhline(value, color=GATE_COLOR, linewidth=1.4)


def _note(ax: Any, text: str) -> None:
    ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7, color=GATE_COLOR)


def _centred_text(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _title(ax: Any, panel: Panel, counts: dict[str, int]) -> None:
    parent_count = counts.get(panel.parent, 0)
    name = _short(panel.path)
    if panel.gate is not None and panel.gate.kind == "quadrant":
        title = f"{name}\nquadrants of {_short(panel.parent)} ({parent_count:,})"
    else:
        count = counts.get(panel.path, 0)
        pct = f"{100.0 * count / parent_count:.2f}%" if parent_count else "-"
        title = f"{name}\n{count:,} events, {pct} of {_short(panel.parent)}"
    # An explicit y skips matplotlib's search for top-axis decorations to dodge.
    ax.set_title(title, fontsize=8, y=1.0)
    ax.tick_params(labelsize=6)


def _histogram(ax: Any, x: np.ndarray, x_lim: tuple[float, float]) -> None:
    heights, edges = np.histogram(x[np.isfinite(x)], bins=BINS, range=x_lim)
    outline = np.column_stack(
        [np.repeat(edges, 2), np.concatenate([[0.0], np.repeat(heights, 2), [0.0]])]
    )
    ax.add_artist(Polygon(outline, closed=True, facecolor="#4c72b0", edgecolor="none"))
    ax.set_ylim(0, max(float(heights.max(initial=0)), 1.0) * 1.05)
    ax.set_ylabel("events", fontsize=7)


def _density(ax: Any, x: np.ndarray, y: np.ndarray, x_lim: tuple, y_lim: tuple) -> None:
    keep = np.isfinite(x) & np.isfinite(y)
    density, _, _ = np.histogram2d(x[keep], y[keep], bins=BINS, range=[x_lim, y_lim])
    if density.max() > 0:
        ax.imshow(
            np.ma.masked_equal(density.T, 0),
            origin="lower",
            extent=(*x_lim, *y_lim),
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            norm=LogNorm(vmin=1, vmax=density.max()),
        )


def _draw_panel(ax: Any, panel: Panel, outcome: GatingOutcome, counts: dict, max_events: int):
    """One gate's panel: its parent's events in the gate's space, the gate on top."""
    _title(ax, panel, counts)
    gate = panel.gate
    if gate is None:
        _centred_text(ax, "gate not drawn\n(gated by FlowKit's engine)")
        return
    if gate.kind == "boolean":
        refs = [f"{_short(ref)}{' (NOT)' if complement else ''}" for ref, complement in gate.refs]
        _centred_text(ax, f"Boolean {gate.operation.upper()}\nof " + "\n".join(refs))
        return
    parent = outcome.members.get(panel.parent)
    if parent is None or not len(parent):
        _centred_text(ax, "no events in the parent gate")
        return
    space = outcome.space
    index = _thin(parent, max_events)
    coordinates = _gate_values(gate)
    x = space.values(gate, gate.dims[0], index)
    x_lim = view_limits(x, coordinates[0])
    _set_axis(ax, "x", space, gate, 0, x_lim)
    if len(gate.dims) == 1:
        _histogram(ax, x, x_lim)
        _draw_gate(ax, gate, x_lim, None)
        return
    y = space.values(gate, gate.dims[1], index)
    y_lim = view_limits(y, coordinates[1])
    _set_axis(ax, "y", space, gate, 1, y_lim)
    _density(ax, x, y, x_lim, y_lim)
    if len(gate.dims) > 2 and gate.kind != "ellipsoid":
        _note(ax, f"{len(gate.dims)}-D gate: first two dimensions shown")
    _draw_gate(ax, gate, x_lim, y_lim)


class QcCanvas:
    """A figure with one empty axes per panel, reused from file to file.

    Making the axes and their tick artists costs about as much as drawing them, and every
    file of a batch has the same panels, so the axes are made once; each file then only
    removes the previous file's drawing (images, gate outlines, texts) and draws its own.
    """

    def __init__(self, n_panels: int, columns: int = 4) -> None:
        n_cols = max(1, min(columns, n_panels))
        n_rows = max(1, math.ceil(n_panels / n_cols))
        width, height = 3.7 * n_cols, 3.5 * n_rows + 0.5
        self.figure = Figure(figsize=(width, height))
        FigureCanvasAgg(self.figure)
        # Fixed margins (inches → fractions): tight_layout took half the drawing time.
        self.figure.subplots_adjust(
            left=0.75 / width,
            right=1 - 0.15 / width,
            bottom=0.55 / height,
            top=1 - 1.0 / height,
            wspace=0.38,
            hspace=0.62,
        )
        self.title = self.figure.suptitle("", fontsize=10, y=1 - 0.3 / height)
        self.axes = [
            self.figure.add_subplot(n_rows, n_cols, number) for number in range(1, n_panels + 1)
        ]
        self.key = (n_panels, columns)

    def clear(self) -> None:
        """Remove what the previous file drew; keep the axes and their tick artists."""
        for ax in self.axes:
            for artist in [*ax.images, *ax.lines, *ax.patches, *ax.texts, *ax.artists]:
                artist.remove()
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)


def plot_gates(
    sample: Any,
    strategy: Any,
    path: str | Path,
    comp: object = "file",
    outcome: GatingOutcome | None = None,
    max_events: int = 100_000,
    columns: int = 4,
    dpi: int = 80,
    canvas: QcCanvas | None = None,
) -> Path:
    """Draw every gate of ``strategy`` (plan or FlowKit strategy) on ``sample`` (ckpk's
    ``FcsFile`` or a FlowKit ``Sample``) into the PNG ``path``; returns it.

    ``outcome`` (from :func:`ckpk.flow.gating.gate_events`) avoids gating twice. At most
    ``max_events`` parent events (evenly spaced) are drawn per panel. ``canvas`` (a
    :class:`QcCanvas` of as many panels) is reused instead of making a new figure.
    """
    plan = as_plan(strategy)
    if outcome is None or outcome.space is None:
        outcome = gate_events(sample, plan, comp)
    counts = dict(zip(outcome.counts["gate_path"], outcome.counts["count"], strict=True))
    counts[ROOT] = int(outcome.space.count)
    chosen = panels(plan)
    if canvas is None or canvas.key != (len(chosen), columns):
        canvas = QcCanvas(len(chosen), columns)
    else:
        canvas.clear()
    space = outcome.space
    canvas.title.set_text(
        f"{space.source.id}: {space.count:,} events, compensation: {outcome.compensation}"
    )
    for ax, panel in zip(canvas.axes, chosen, strict=True):
        _draw_panel(ax, panel, outcome, counts, max_events)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fast zlib level: a third of the encoding time for a PNG a fifth larger.
    canvas.figure.savefig(
        path, dpi=dpi, metadata={"Software": None}, pil_kwargs={"compress_level": 1}
    )
    return path
