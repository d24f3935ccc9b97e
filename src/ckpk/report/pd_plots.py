"""Plots of what the trial asks of the kinetics: dose proportionality and exposure by
clinical response.

As in :mod:`ckpk.report.pk_plots`, matplotlib is used through ``Figure`` and the Agg
canvas, never ``pyplot``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.cells import safe_file_name, text
from ckpk.pd.exposure_response import YES_WORDS
from ckpk.report.figure_cache import FigureCache
from ckpk.report.pk_plots import _decimal_ticks, _save, fixed_layout


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_dose_proportionality(
    nca: pd.DataFrame, subjects: pd.DataFrame, result: pd.Series, path: str | Path
) -> Path:
    """Y against dose on log-log axes with the power-model fit (one analyte × parameter).

    Points are subjects with a positive Y; the line is ln Y = a + b ln dose with the
    slope b and its 90 % interval and the conclusion in the legend.
    """
    analyte, parameter = str(result["analyte"]), str(result["parameter"])
    doses = dict(
        zip(subjects["subject_id"].astype(str), pd.to_numeric(subjects["dose"]), strict=False)
    )
    rows = nca[nca["analyte"].astype(str) == analyte]
    dose = rows["subject_id"].astype(str).map(doses).astype(float)
    value = pd.to_numeric(rows[parameter], errors="coerce")
    keep = (dose > 0) & (value > 0)
    fig = _figure(5.6, 4.2)
    ax = fig.add_subplot()
    ax.scatter(dose[keep], value[keep], color="tab:blue", zorder=3, label="subjects")
    if math.isfinite(float(result.get("slope", math.nan))) and keep.any():
        grid = np.geomspace(dose[keep].min(), dose[keep].max(), 50)
        line = np.exp(result["intercept"] + result["slope"] * np.log(grid))
        label = (
            f"ln Y = a + b ln dose, b = {result['slope']:.2f} "
            f"(90 % CI {result['slope_ci90_low']:.2f}-{result['slope_ci90_high']:.2f}); "
            f"{result['conclusion']}"
        )
        ax.plot(grid, line, color="tab:red", label=label)
    else:
        ax.text(
            0.02,
            0.95,
            f"no fit: {result.get('note') or result['conclusion']}",
            transform=ax.transAxes,
            fontsize=8,
            va="top",
            color="dimgray",
        )
    if keep.any():
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        ax.text(
            0.5,
            0.5,
            "no subject with a dose and quantifiable CAR T",
            ha="center",
            transform=ax.transAxes,
            color="dimgray",
        )
    ax.set_xlabel("dose (CAR+ cells/kg)")
    ax.set_ylabel(f"{parameter} of {analyte}")
    ax.set_title(f"Dose proportionality: {parameter}, {analyte}", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")
    fixed_layout(fig)
    return _save(fig, path)


def plot_exposure_by_endpoint(
    clinical: pd.DataFrame, exposures: pd.DataFrame, endpoint: str, day: float, path: str | Path
) -> Path:
    """Each exposure metric by group of one endpoint (a panel per metric, log scale)."""
    judged = clinical[(clinical["endpoint"] == endpoint) & (clinical["day"] == day)]
    responses = (
        judged.drop_duplicates("subject_id")
        .set_index(judged.drop_duplicates("subject_id")["subject_id"].astype(str))["value"]
        .map(text)
    )
    metrics = list(exposures.columns)
    columns = 3
    rows = max(1, math.ceil(len(metrics) / columns))
    fig = _figure(3.4 * columns, 2.8 * rows)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, columns, i + 1)
        joined = pd.DataFrame({"group": responses, "x": exposures[metric]}).dropna()
        joined = joined[joined["x"] > 0]
        groups = sorted(joined["group"].unique(), key=_group_order)
        for position, group in enumerate(groups):
            values = joined.loc[joined["group"] == group, "x"].to_numpy(float)
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(position + np.asarray(jitter), values, s=18, color="tab:blue")
            ax.hlines(np.median(values), position - 0.3, position + 0.3, color="tab:red")
        ax.set_xticks(range(len(groups)), groups)
        if len(joined):
            ax.set_yscale("log")
            _decimal_ticks(ax)
        else:
            ax.text(
                0.5,
                0.5,
                "no positive value",
                ha="center",
                transform=ax.transAxes,
                color="dimgray",
                fontsize=8,
            )
        ax.set_title(metric.replace(" ", "\n", 1), fontsize=8)
        ax.tick_params(which="both", labelsize=7)
    fig.suptitle(f"{endpoint}, day {day:g}: exposure by group (red: median)", fontsize=10)
    # Fixed margins in inches (tight_layout measures by drawing the figure once more, and
    # was most of this figure's cost): the title on top, two-line panel titles between
    # rows, tick labels left of each panel.
    width, height = 3.4 * columns, 2.8 * rows
    fig.subplots_adjust(
        left=0.7 / width,
        right=1 - 0.15 / width,
        bottom=0.45 / height,
        top=1 - 0.75 / height,
        wspace=0.4,
        hspace=0.45,
    )
    return _save(fig, path)


def _group_order(group: str) -> tuple:
    word = str(group).casefold()
    try:
        return (0, float(word), "")
    except ValueError:
        return (1, 1.0 if word in YES_WORDS else 0.0, word)


def draw_pd_figures(
    nca: pd.DataFrame,
    subjects: pd.DataFrame,
    proportionality: pd.DataFrame,
    clinical: pd.DataFrame,
    exposures: pd.DataFrame,
    proportionality_dir: str | Path,
    response_dir: str | Path,
    cache: FigureCache | None = None,
) -> list[Path]:
    """``<analyte>_<parameter>.png`` per dose-proportionality row, ``<endpoint>_day<D>.png``
    per clinical endpoint and day; unchanged figures are copied from ``cache``."""
    cache = cache or FigureCache(None)
    written = []
    for folder in (proportionality_dir, response_dir):
        Path(folder).mkdir(parents=True, exist_ok=True)
    for _, result in proportionality.iterrows():
        name = safe_file_name(f"{result['analyte']}_{result['parameter']}")
        path = Path(proportionality_dir) / f"{name}.png"
        # What the figure shows: this analyte's parameter per subject, and the doses.
        rows = nca[nca["analyte"].astype(str) == str(result["analyte"])]
        shown = (rows[["subject_id", str(result["parameter"])]], subjects, result)
        written.append(
            cache.figure(path, plot_dose_proportionality, nca, subjects, result, path, shown=shown)
        )
    if len(clinical) and len(exposures.columns):
        for (endpoint, day), _ in clinical.groupby(["endpoint", "day"], sort=True):
            name = safe_file_name(f"{endpoint}_day{day:g}")
            path = Path(response_dir) / f"{name}.png"
            written.append(
                cache.figure(
                    path, plot_exposure_by_endpoint, clinical, exposures, endpoint, day, path
                )
            )
    return written
