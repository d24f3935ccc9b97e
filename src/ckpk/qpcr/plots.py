"""Standard-curve plot: one PNG per plate × target for the QC report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def plot_standard_curve(
    wells: pd.DataFrame, curve_row: Mapping | pd.Series, path: str | Path
) -> Path:
    """Draw one plate × target standard curve to ``path`` (PNG) and return the path.

    Shows the standard wells used in the fit (filled), omitted standards (open), the
    fitted line with its equation, efficiency (%) and R², pass/fail with the reason,
    and every amplified unknown placed on the line at its Cq (read-back quantity).
    Matplotlib is imported here, with the Agg canvas, so importing ``ckpk.qpcr`` stays
    light and plotting needs no display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = dict(curve_row)
    plate, target = str(curve["plate"]), str(curve["target"])
    mine = wells[(wells["plate"] == plate) & (wells["target"] == target)]
    standards = mine[(mine["task"] == "standard") & mine["cq"].notna() & (mine["quantity"] > 0)]
    used = standards[~standards["omit"]]
    unknowns = mine[(mine["task"] == "unknown") & ~mine["omit"] & mine["cq"].notna()]

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw_standards(ax, used, standards[standards["omit"]])
    text = _draw_fit(ax, curve, standards, unknowns)
    verdict = "pass" if bool(curve["pass"]) else f"FAIL: {curve.get('reason', '')}"
    ax.text(
        0.98,
        0.98,
        f"{text}\n{verdict}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        color="black" if bool(curve["pass"]) else "tab:red",
    )
    ax.set_xlabel("log10 copies per reaction")
    ax.set_ylabel("Cq")
    ax.set_title(f"{plate} — {target}", fontsize=10)
    if len(used) or len(unknowns):
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _draw_standards(ax: object, used: pd.DataFrame, omitted: pd.DataFrame) -> None:
    """Standards in the fit filled, omitted ones open."""
    ax.scatter(
        np.log10(used["quantity"]), used["cq"], color="tab:blue", label="standards", zorder=3
    )
    if len(omitted):
        ax.scatter(
            np.log10(omitted["quantity"]),
            omitted["cq"],
            facecolors="none",
            edgecolors="tab:gray",
            label="omitted standards",
            zorder=3,
        )


def _draw_fit(ax: object, curve: Mapping, standards: pd.DataFrame, unknowns: pd.DataFrame) -> str:
    """The fitted line over standards and read-back unknowns; returns its description."""
    slope, intercept = float(curve["slope"]), float(curve["intercept"])
    if not (math.isfinite(slope) and math.isfinite(intercept) and slope != 0):
        return "no line fitted"
    x_values = list(np.log10(standards["quantity"]))
    if len(unknowns):
        x_values += list((unknowns["cq"] - intercept) / slope)
    xs = np.linspace(min(x_values) - 0.2, max(x_values) + 0.2, 50)
    ax.plot(xs, slope * xs + intercept, color="tab:blue", lw=1)
    if len(unknowns):
        ax.scatter(
            (unknowns["cq"] - intercept) / slope,
            unknowns["cq"],
            marker="x",
            color="tab:red",
            label="unknowns (read back)",
            zorder=4,
        )
    return (
        f"Cq = {slope:.3f} · log10(copies) + {intercept:.3f}\n"
        f"efficiency {float(curve['efficiency']):.1f} %   R² {float(curve['r2']):.4f}"
    )
