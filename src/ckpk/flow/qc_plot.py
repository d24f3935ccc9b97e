"""Gate QC plots: one PNG per FCS file, one panel per gate.

Each panel shows the gate's parent events in the strategy's own compensated and
transformed space (the space the gate coordinates live in), as a 2-D density or a 1-D
histogram, with the gate drawn on top: polygon, rectangle, ellipse, range lines or
quadrant dividers. The title gives the count and % of parent, so a scientist sees at a
glance that gates sit on the populations they should. Boolean gates get a text panel.

Nothing from the file's free-text keywords is drawn (docs/rules.md, Bad input): only the file label,
channel names (PnN/PnS), counts and the compensation used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Polygon, Rectangle
from matplotlib.ticker import MaxNLocator

from ckpk.flow._flowkit_compat import gate_space_events, restore_cached_events
from ckpk.flow.compensation import compensation_override
from ckpk.flow.gating import GatingOutcome, gate_events
from ckpk.flow.strategy import iter_gates

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

GATE_COLOR = "#d62728"
BINS = 128
_OUTLINE = {"edgecolor": GATE_COLOR, "facecolor": "none", "linewidth": 1.6}


def _dim_column(dim: object) -> str:
    if hasattr(dim, "ratio_ref"):
        return dim.ratio_ref
    if hasattr(dim, "dimension_ref"):
        return dim.dimension_ref
    return dim.id


def _axis_label(dim: object, sample: flowkit.Sample, strategy: flowkit.GatingStrategy) -> str:
    column = _dim_column(dim)
    label = column
    if column in sample.pnn_labels:
        stain = sample.pns_labels[sample.pnn_labels.index(column)].strip()
        if stain:
            label = f"{stain} ({column})"
    transform = strategy.transformations.get(getattr(dim, "transformation_ref", None) or "")
    if transform is not None:
        kind = type(transform).__name__.replace("Transform", "").replace("WSP", "").lower()
        label += f" [{kind}]"
    return label


def _values(events: object, dim: object, position: int, index: np.ndarray) -> np.ndarray:
    """One dimension's values for the chosen events (by column name; FlowKit appends ratio
    dimensions after the channels, so positions alone would not do)."""
    column = events[_dim_column(dim)]
    if getattr(column, "ndim", 1) == 2:  # the same channel used twice in one gate
        column = column.iloc[:, 0 if position == 0 else -1]
    return column.to_numpy(dtype=float)[index]


def _limits(values: np.ndarray, extra: list[float]) -> tuple[float, float]:
    """Axis range covering the bulk of the events and every finite gate coordinate."""
    finite = values[np.isfinite(values)]
    points = [float(v) for v in extra if v is not None and math.isfinite(float(v))]
    if finite.size:
        low, high = np.percentile(finite, [0.2, 99.8])
        points += [float(low), float(high)]
    if not points:
        return 0.0, 1.0
    low, high = min(points), max(points)
    span = high - low if high > low else max(abs(high), 1.0)
    return low - 0.06 * span, high + 0.06 * span


def _gate_coordinates(gate: object) -> list[list[float]]:
    """Per-dimension coordinates of the gate boundary, used to fit the axes."""
    import flowkit

    dims = len(gate.dimensions)
    coords: list[list[float]] = [[] for _ in range(dims)]
    if isinstance(gate, flowkit.gates.PolygonGate):
        for vertex in gate.vertices:
            for i in range(min(dims, len(vertex))):
                coords[i].append(vertex[i])
    elif isinstance(gate, flowkit.gates.EllipsoidGate):
        covariance = np.asarray(gate.covariance_matrix, dtype=float)
        for i in range(dims):
            half = math.sqrt(max(covariance[i, i] * gate.distance_square, 0.0))
            coords[i] += [gate.coordinates[i] - half, gate.coordinates[i] + half]
    elif isinstance(gate, flowkit.gates.QuadrantGate):
        for i, divider in enumerate(gate.dimensions):
            coords[i] += list(divider.values)
    else:
        for i, dim in enumerate(gate.dimensions):
            coords[i] += [v for v in (dim.min, dim.max) if v is not None]
    return coords


def _draw_gate(ax: object, gate: object, x_lim: tuple, y_lim: tuple | None) -> None:
    import flowkit

    two_d = y_lim is not None
    if isinstance(gate, flowkit.gates.PolygonGate) and two_d:
        # add_artist, not add_patch: the axes limits are already fixed, and add_patch would
        # measure the outline segment by segment to autoscale them.
        ax.add_artist(Polygon([v[:2] for v in gate.vertices], closed=True, **_OUTLINE))
    elif isinstance(gate, flowkit.gates.EllipsoidGate) and two_d:
        _draw_ellipse(ax, gate)
    elif isinstance(gate, flowkit.gates.QuadrantGate):
        for value in gate.dimensions[0].values:
            ax.axvline(value, color=GATE_COLOR, linewidth=1.4)
        if two_d and len(gate.dimensions) > 1:
            for value in gate.dimensions[1].values:
                ax.axhline(value, color=GATE_COLOR, linewidth=1.4)
    elif isinstance(gate, flowkit.gates.RectangleGate):
        if two_d:
            _draw_rectangle(ax, gate.dimensions, x_lim, y_lim)
        else:
            _draw_range(ax, gate.dimensions[0], x_lim)


def _draw_ellipse(ax: object, gate: object) -> None:
    if len(gate.dimensions) > 2:
        ax.text(
            0.02,
            0.02,
            "3-D ellipsoid: outline not drawn",
            transform=ax.transAxes,
            fontsize=7,
            color=GATE_COLOR,
        )
        return
    covariance = np.asarray(gate.covariance_matrix, dtype=float)
    values, vectors = np.linalg.eigh(covariance)
    order = values.argsort()[::-1]
    values, vectors = values[order], vectors[:, order]
    angle = math.degrees(math.atan2(vectors[1, 0], vectors[0, 0]))
    width, height = 2.0 * np.sqrt(np.clip(values, 0, None) * gate.distance_square)
    ax.add_artist(Ellipse(tuple(gate.coordinates[:2]), width, height, angle=angle, **_OUTLINE))


def _draw_rectangle(ax: object, dims: list, x_lim: tuple, y_lim: tuple) -> None:
    x_min, x_max = dims[0].min, dims[0].max
    y_min, y_max = dims[1].min, dims[1].max
    if None not in (x_min, x_max, y_min, y_max):
        ax.add_artist(Rectangle((x_min, y_min), x_max - x_min, y_max - y_min, **_OUTLINE))
        return
    # Open-ended rectangle (GatingML allows a missing min or max): shade it, draw its bounds.
    left = x_lim[0] if x_min is None else x_min
    right = x_lim[1] if x_max is None else x_max
    bottom = y_lim[0] if y_min is None else y_min
    top = y_lim[1] if y_max is None else y_max
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
    for value in (x_min, x_max):
        if value is not None:
            ax.axvline(value, color=GATE_COLOR, linewidth=1.4)
    for value in (y_min, y_max):
        if value is not None:
            ax.axhline(value, color=GATE_COLOR, linewidth=1.4)


def _draw_range(ax: object, dim: object, x_lim: tuple) -> None:
    left = x_lim[0] if dim.min is None else dim.min
    right = x_lim[1] if dim.max is None else dim.max
    ax.axvspan(left, right, color=GATE_COLOR, alpha=0.12)
    for value in (dim.min, dim.max):
        if value is not None:
            ax.axvline(value, color=GATE_COLOR, linewidth=1.4)


def _label_quadrants(
    ax: object, gate: object, counts: dict, parent_count: int, x_lim: tuple, y_lim: tuple | None
) -> None:
    if y_lim is None or len(gate.dimensions) < 2:
        return
    x_div, y_div = gate.dimensions[0].id, gate.dimensions[1].id
    for quadrant_id, quadrant in gate.quadrants.items():
        try:
            x_range = quadrant.get_divider_range(x_div)
            y_range = quadrant.get_divider_range(y_div)
        except KeyError:
            continue
        x_low = x_lim[0] if x_range[0] is None else x_range[0]
        x_high = x_lim[1] if x_range[1] is None else x_range[1]
        y_low = y_lim[0] if y_range[0] is None else y_range[0]
        y_high = y_lim[1] if y_range[1] is None else y_range[1]
        count = counts.get(quadrant_id)
        if count is None:
            continue
        pct = f"{100.0 * count / parent_count:.1f}%" if parent_count else "-"
        ax.text(
            (x_low + x_high) / 2,
            (y_low + y_high) / 2,
            f"{quadrant_id}\n{count:,} ({pct})",
            ha="center",
            va="center",
            fontsize=7,
            color="black",
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
        )


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1] if path != "/root" else "all events"


def _thin(index: np.ndarray, max_events: int) -> np.ndarray:
    """Deterministic subsample: evenly spaced events, so re-runs draw identical plots."""
    if index.size <= max_events:
        return index
    return index[np.linspace(0, index.size - 1, max_events).astype(np.int64)]


@dataclass(frozen=True)
class _Drawing:
    """What every panel of one file's plot draws from."""

    sample: flowkit.Sample
    strategy: flowkit.GatingStrategy
    counts: dict[str, int]  # events by gate path, "/root" for all events
    membership: dict[str, np.ndarray]  # per-event membership by gate path
    max_events: int

    def parent_events(self, parent: str) -> np.ndarray | None:
        if parent == "/root":
            return np.ones(self.sample.event_count, dtype=bool)
        return self.membership.get(parent)


def plot_gates(
    sample: flowkit.Sample,
    strategy: flowkit.GatingStrategy,
    path: str | Path,
    comp: object = "file",
    outcome: GatingOutcome | None = None,
    max_events: int = 100_000,
    columns: int = 4,
    dpi: int = 80,
) -> Path:
    """Draw every gate of ``strategy`` on ``sample`` into the PNG ``path``; returns it.

    ``outcome`` (from :func:`ckpk.flow.gating.gate_events`) avoids gating twice. At most
    ``max_events`` parent events (evenly spaced) are binned per panel.
    """
    import flowkit

    if outcome is None:
        outcome = gate_events(sample, strategy, comp)
    counts = dict(zip(outcome.counts["gate_path"], outcome.counts["count"], strict=True))
    counts["/root"] = sample.event_count
    drawing = _Drawing(sample, strategy, counts, outcome.membership, max_events)
    panels = [
        (gate_path, parent)
        for gate_path, gate, parent in iter_gates(strategy)
        if not isinstance(gate, flowkit.gates.Quadrant)
    ]
    figure, n_rows, n_cols = _figure(sample, outcome.compensation, len(panels), columns)
    strategy.clear_cache()
    try:
        with compensation_override(sample, comp):
            if outcome.preprocessed:
                # The events exactly as they were gated: no second compensation and
                # logicle pass (about a third of the plot's time otherwise).
                restore_cached_events(strategy, sample.id, outcome.preprocessed)
            for number, (gate_path, parent) in enumerate(panels, start=1):
                _panel(figure.add_subplot(n_rows, n_cols, number), drawing, gate_path, parent)
    finally:
        strategy.clear_cache()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, metadata={"Software": None})
    return path


def _figure(
    sample: flowkit.Sample, compensation: str, n_panels: int, columns: int
) -> tuple[Figure, int, int]:
    """An empty figure for ``n_panels`` panels, titled with the file and its compensation."""
    n_cols = max(1, min(columns, n_panels))
    n_rows = max(1, math.ceil(n_panels / n_cols))
    width, height = 3.7 * n_cols, 3.5 * n_rows + 0.5
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    # Fixed margins (inches → fractions): tight_layout took half the drawing time.
    figure.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.15 / width,
        bottom=0.55 / height,
        top=1 - 1.0 / height,
        wspace=0.38,
        hspace=0.62,
    )
    figure.suptitle(
        f"{sample.id}: {sample.event_count:,} events, compensation: {compensation}",
        fontsize=10,
        y=1 - 0.3 / height,
    )
    return figure, n_rows, n_cols


def _panel(ax: object, drawing: _Drawing, gate_path: str, parent: str) -> None:
    """One gate's panel: its parent's events in the gate's space, the gate on top."""
    import flowkit

    sample, strategy = drawing.sample, drawing.strategy
    parts = tuple(gate_path.strip("/").split("/"))
    gate = strategy.get_gate(parts[-1], parts[:-1], sample_id=sample.id)
    parent_mask = drawing.parent_events(parent)
    parent_count = drawing.counts.get(parent, 0)
    _title(ax, gate, gate_path, parent, drawing.counts, parent_count)
    if isinstance(gate, flowkit.gates.BooleanGate):
        refs = [ref["ref"] + (" (NOT)" if ref.get("complement") else "") for ref in gate.gate_refs]
        _centred_text(ax, f"Boolean {gate.type.upper()}\nof " + "\n".join(refs))
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if parent_mask is None or not parent_count:
        _centred_text(ax, "no events in the parent gate")
        return
    # Events in the strategy's compensated + transformed space for this gate's dimensions
    # (the same preprocessing FlowKit applies before testing the gate).
    events = gate_space_events(strategy, sample, gate)
    index = _thin(np.flatnonzero(parent_mask), drawing.max_events)
    dims = gate.dimensions
    coords = _gate_coordinates(gate)
    x = _values(events, dims[0], 0, index)
    x_lim = _limits(x, coords[0])
    ax.set_xlabel(_axis_label(dims[0], sample, strategy), fontsize=7)
    if len(dims) == 1:
        _histogram(ax, x, x_lim)
        _draw_gate(ax, gate, x_lim, None)
        return
    y = _values(events, dims[1], 1, index)
    y_lim = _limits(y, coords[1])
    _density(ax, x, y, x_lim, y_lim)
    ax.set_ylabel(_axis_label(dims[1], sample, strategy), fontsize=7)
    if len(dims) > 2 and not isinstance(gate, flowkit.gates.EllipsoidGate):
        ax.text(
            0.02,
            0.02,
            f"{len(dims)}-D gate: first two dimensions shown",
            transform=ax.transAxes,
            fontsize=7,
            color=GATE_COLOR,
        )
    _draw_gate(ax, gate, x_lim, y_lim)
    if isinstance(gate, flowkit.gates.QuadrantGate):
        quadrant_counts = {
            p.rsplit("/", 1)[-1]: c
            for p, c in drawing.counts.items()
            if p.startswith(gate_path + "/")
        }
        _label_quadrants(ax, gate, quadrant_counts, parent_count, x_lim, y_lim)


def _title(
    ax: object, gate: object, gate_path: str, parent: str, counts: dict, parent_count: int
) -> None:
    import flowkit

    name = _short(gate_path)
    if isinstance(gate, flowkit.gates.QuadrantGate):
        title = f"{name}\nquadrants of {_short(parent)} ({parent_count:,})"
    else:
        count = counts.get(gate_path, 0)
        pct = f"{100.0 * count / parent_count:.2f}%" if parent_count else "-"
        title = f"{name}\n{count:,} events, {pct} of {_short(parent)}"
    # An explicit y skips matplotlib's search for top-axis decorations to dodge (there are
    # none here), which measured a fifth of the drawing time.
    ax.set_title(title, fontsize=8, y=1.0)
    ax.tick_params(labelsize=6)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))


def _centred_text(ax: object, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)


def _histogram(ax: object, x: np.ndarray, x_lim: tuple[float, float]) -> None:
    heights, edges = np.histogram(x[np.isfinite(x)], bins=BINS, range=x_lim)
    # The filled step outline that ax.hist(histtype="stepfilled") draws, added without
    # ax.hist's autoscaling (which walks the outline's segments in Python) since the
    # limits are set here anyway.
    outline = np.column_stack(
        [np.repeat(edges, 2), np.concatenate([[0.0], np.repeat(heights, 2), [0.0]])]
    )
    ax.add_artist(Polygon(outline, closed=True, facecolor="#4c72b0", edgecolor="none"))
    ax.set_xlim(x_lim)
    ax.set_ylim(0, max(float(heights.max(initial=0)), 1.0) * 1.05)
    ax.set_ylabel("events", fontsize=7)


def _density(
    ax: object,
    x: np.ndarray,
    y: np.ndarray,
    x_lim: tuple[float, float],
    y_lim: tuple[float, float],
) -> None:
    keep = np.isfinite(x) & np.isfinite(y)
    density, x_edges, y_edges = np.histogram2d(x[keep], y[keep], bins=BINS, range=[x_lim, y_lim])
    if density.max() > 0:
        masked = np.ma.masked_equal(density.T, 0)
        # imshow of the binned counts renders ~10x faster than pcolormesh's quads, which
        # matters at one plot per file for thousands of files.
        ax.imshow(
            masked,
            origin="lower",
            extent=(x_edges[0], x_edges[-1], y_edges[0], y_edges[-1]),
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            norm=LogNorm(vmin=1, vmax=density.max()),
        )
    ax.set_xlim(x_lim)
    ax.set_ylim(y_lim)
