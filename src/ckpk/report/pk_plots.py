"""PK plots: one profile with its model fit, and all subjects of an analyte together.

matplotlib is imported inside each function (it is slow to import and only the plotting
rules need it) and used through ``Figure`` + the Agg canvas, never ``pyplot``, so that no
global state or display is touched when the workflow draws hundreds of plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.cells import booleans, number
from ckpk.pk.kinetics import stein_curve
from ckpk.pk.model import parameters_from_row
from ckpk.pk.summary import UNKNOWN_DOSE, natural_key

_BLQ_STYLE = {"marker": "v", "facecolors": "none", "s": 36, "linewidths": 1.2}

#: Analyte → words with units for titles and axes (the column codes are for tables).
ANALYTE_LABELS = {
    "car_per_ul": "CAR+ T cells per µL blood",
    "car_pct_cd3": "CAR+ T cells, % of CD3+ T cells",
    "car_copies_per_ug": "CAR transgene copies per µg genomic DNA",
    "b_cells_per_ul": "B cells per µL blood",
}


def analyte_label(analyte: str) -> str:
    """The analyte in words with its unit (the code itself when it is not known)."""
    return ANALYTE_LABELS.get(str(analyte), str(analyte))


def _plain_number(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:.6f}".rstrip("0").rstrip(".")


def _decimal_ticks(ax: object) -> None:
    """Plain decimal numbers on a log y axis (0.1, 1, 10, 100, 1,000), not 6×10¹.

    Decades are labelled; on an axis spanning few decades matplotlib's own rule also
    labels some minor ticks (2, 3, 5, …), so that every panel has numbers to read."""
    from matplotlib.ticker import LogFormatter, LogLocator

    class PlainLogFormatter(LogFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            shown = super().__call__(x, pos)
            return _plain_number(x) if shown and x > 0 else ""

    axis = ax.yaxis  # type: ignore[attr-defined]
    axis.set_major_locator(LogLocator(base=10.0))
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


_DPI = 100


def _as_mapping(row: Mapping[str, object] | pd.Series | None) -> Mapping[str, object]:
    if row is None:
        return {}
    if isinstance(row, pd.DataFrame):
        return row.iloc[0].to_dict() if len(row) else {}
    return row


def _prepare(observations: pd.DataFrame) -> pd.DataFrame:
    """day, value, blq (bool), lloq (float) for plotting; missing samples dropped."""
    table = pd.DataFrame(
        {
            "day": pd.to_numeric(observations.get("day"), errors="coerce"),
            "value": pd.to_numeric(observations.get("value"), errors="coerce"),
            "blq": observations.get("blq", pd.Series(False, index=observations.index)),
            "lloq": pd.to_numeric(
                observations.get("lloq", pd.Series(np.nan, index=observations.index)),
                errors="coerce",
            ),
        }
    )
    table["blq"] = booleans(table["blq"])
    table = table[table["day"].notna()]
    quant = ~table["blq"] & (table["value"] > 0)
    # A 0 or negative reading not flagged BLQ cannot sit on a log axis: treat it as BLQ.
    table.loc[~table["blq"] & (table["value"] <= 0), "blq"] = True
    return table[quant | table["blq"]].sort_values("day", kind="mergesort")


def _log_axis(ax: object, positive: list[float]) -> None:
    """Log y axis with a factor-3 margin around the levels, or a note when there are none."""
    ax.set_yscale("log")  # type: ignore[attr-defined]
    if positive:
        ax.set_ylim(min(positive) / 3.0, max(positive) * 3.0)  # type: ignore[attr-defined]
        _decimal_ticks(ax)
        return
    ax.set_ylim(1.0, 10.0)  # type: ignore[attr-defined]
    ax.text(  # type: ignore[attr-defined]
        0.5,
        0.5,
        "no quantifiable observation",
        transform=ax.transAxes,  # type: ignore[attr-defined]
        ha="center",
        va="center",
        color="dimgray",
    )


def fixed_layout(fig: object) -> None:
    """Margins that fit the widest decimal tick label ("100,000") and a label in words.

    Used instead of ``tight_layout``, which draws every figure twice (once to measure its
    labels) and was half of the plotting rules' time."""
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.12, top=0.92)  # type: ignore[attr-defined]


def _save(fig: object, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=_DPI)  # type: ignore[attr-defined]
    return path


def plot_fit(
    observations: pd.DataFrame,
    fit_row: Mapping[str, object] | pd.Series | None,
    nca_row: Mapping[str, object] | pd.Series | None,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """PNG of one subject × analyte: observations, model curve, LLOQ, NCA Cmax/Tmax.

    ``observations`` has the concentrations columns day, value, blq, lloq for one
    profile. Quantifiable samples are filled circles; BLQ samples are open triangles drawn
    at their LLOQ (at the bottom edge when no LLOQ is known); the dashed line is the
    LLOQ; the curve is the Stein 2019 model of ``fit_row`` (a ``model_fits`` row) when
    it converged, else its flags are printed; the star is the NCA Cmax at Tmax from
    ``nca_row``. Log y axis. Draws something for any input, including all-BLQ profiles.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = _prepare(observations)
    fit = _as_mapping(fit_row)
    nca = _as_mapping(nca_row)
    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positive = _draw_observations(ax, data)
    cmax_nca, tmax_nca = number(nca.get("cmax")), number(nca.get("tmax"))
    if cmax_nca > 0:
        positive.append(cmax_nca)
    _draw_model(ax, fit, data, positive)
    if cmax_nca > 0 and math.isfinite(tmax_nca):
        ax.scatter(
            [tmax_nca],
            [cmax_nca],
            marker="*",
            s=140,
            color="tab:orange",
            zorder=4,
            edgecolors="black",
            linewidths=0.5,
            label="NCA Cmax at Tmax",
        )

    _log_axis(ax, positive)
    analyte = str(fit.get("analyte") or nca.get("analyte") or "")
    ax.set_xlabel("day after CAR T infusion")
    ax.set_ylabel(analyte_label(analyte) if analyte else "level")
    ax.set_title(
        title
        or f"{fit.get('subject_id', nca.get('subject_id', ''))} "
        f"{fit.get('analyte', nca.get('analyte', ''))}".strip(),
        fontsize=10,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper right")
    fixed_layout(fig)
    return _save(fig, path)


def _draw_observations(ax: object, data: pd.DataFrame) -> list[float]:
    """Quantifiable samples, BLQ samples at their LLOQ (or on the axis) and the LLOQ lines;
    returns the levels drawn, which set the y range."""
    quant = data[~data["blq"]]
    blq = data[data["blq"]]
    blq_known = blq[blq["lloq"] > 0]
    blq_unknown = blq[~(blq["lloq"] > 0)]
    if len(quant):
        ax.scatter(quant["day"], quant["value"], color="black", s=24, zorder=3, label="observed")
    if len(blq_known):
        ax.scatter(
            blq_known["day"],
            blq_known["lloq"],
            color="tab:red",
            zorder=3,
            label="BLQ (at LLOQ)",
            **_BLQ_STYLE,
        )
    if len(blq_unknown):
        ax.scatter(
            blq_unknown["day"],
            np.zeros(len(blq_unknown)),
            color="tab:red",
            zorder=3,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            label="BLQ (no LLOQ)",
            **_BLQ_STYLE,
        )
    _draw_lloq(ax, data["lloq"])
    return list(quant["value"]) + list(blq_known["lloq"])


def _draw_lloq(ax: object, lloq: pd.Series) -> None:
    """One dashed line per distinct LLOQ (3 significant digits), or, when the sample LLOQs
    vary (flow: per sample), one shaded band from the lowest to the highest."""
    levels = sorted({float(f"{v:.3g}") for v in lloq.dropna() if v > 0})
    if not levels:
        return
    if len(levels) <= 2:
        for level in levels:
            ax.axhline(level, color="tab:red", linestyle="--", linewidth=0.8)  # type: ignore[attr-defined]
        text = "LLOQ " + " and ".join(f"{v:.3g}" for v in levels)
    else:
        ax.axhspan(levels[0], levels[-1], color="tab:red", alpha=0.08, linewidth=0)  # type: ignore[attr-defined]
        text = f"LLOQ {levels[0]:.3g}–{levels[-1]:.3g} (per sample)"
    ax.annotate(  # type: ignore[attr-defined]
        text,
        (1.0, levels[-1]),
        xycoords=("axes fraction", "data"),
        ha="right",
        va="bottom",
        fontsize=7,
        color="tab:red",
    )


def _draw_model(
    ax: object, fit: Mapping[str, object], data: pd.DataFrame, positive: list[float]
) -> None:
    """The fitted Stein curve (extending ``positive`` so that it shows), or why there is none."""
    params = parameters_from_row(fit)
    label = f"model ({fit.get('model') or 'fit'})"
    start = 0.0
    if params is None and fit and math.isnan(number(fit.get("foldx"))):
        # foldx not estimable (an unseen rise): the decline is still known, and only it
        # is drawn; foldx does not shape the curve after Tmax.
        params = parameters_from_row({**dict(fit), "foldx": 2.0})
        if params is not None:
            start, label = params.tmax, label + ", decline only: the rise is not determined"
    end_day = float(data["day"].max()) if len(data) else 28.0
    if params is not None:
        days = np.linspace(start, max(end_day, params.tmax * 1.5), 600)
        days = np.union1d(days, [params.tmax])
        curve = stein_curve(days, params)
        ax.plot(days, curve, color="tab:blue", linewidth=1.5, label=label)
        low = max(min(positive), 1e-12) / 20 if positive else params.cmax / 1e4
        positive.extend([params.cmax, max(float(curve[-1]), low)])
    elif fit:
        reason = str(fit.get("flags") or "not converged")
        ax.text(
            0.02,
            0.02,
            f"no model curve: {reason}"[:120],
            transform=ax.transAxes,
            fontsize=7,
            color="dimgray",
            va="bottom",
        )


def _dose_colours(
    subjects: pd.DataFrame | None, subject_ids: list[str]
) -> tuple[dict[str, str], dict[str, object]]:
    """Each subject's dose level, and a colour per dose level in natural order."""
    from matplotlib import colormaps

    doses: dict[str, str] = {}
    if subjects is not None and {"subject_id", "dose_level"} <= set(subjects.columns):
        doses = {
            str(s).strip(): str(d).strip() if pd.notna(d) and str(d).strip() else UNKNOWN_DOSE
            for s, d in zip(subjects["subject_id"], subjects["dose_level"], strict=True)
        }
    levels = sorted({doses.get(s, UNKNOWN_DOSE) for s in subject_ids}, key=natural_key)
    palette = colormaps["tab10"] if len(levels) <= 10 else colormaps["viridis"]
    colours = {
        d: palette(i if len(levels) <= 10 else i / max(len(levels) - 1, 1))
        for i, d in enumerate(levels)
    }
    return doses, colours


def _draw_profile_line(ax: object, rows: pd.DataFrame, colour: object) -> list[float]:
    """One subject's line, quantifiable dots and BLQ triangles at the LLOQ (days >= 0);
    returns the levels drawn."""
    data = _prepare(rows)
    data = data[data["day"] >= 0]
    level = data["value"].where(~data["blq"], data["lloq"])
    keep = level > 0
    data, level = data[keep], level[keep]
    if data.empty:
        return []
    is_blq = data["blq"].to_numpy()
    # Solid lines join quantifiable samples only; a step to or from a BLQ sample is
    # dotted, so a non-responder is not drawn as a flat profile persisting at the LLOQ.
    days, values = data["day"].to_numpy(float), level.to_numpy(float)
    for i in range(len(days) - 1):
        style = "-" if not (is_blq[i] or is_blq[i + 1]) else ":"
        ax.plot(
            days[i : i + 2],
            values[i : i + 2],
            color=colour,
            linewidth=0.9,
            alpha=0.8,
            linestyle=style,
        )
    ax.scatter(data["day"][~is_blq], level[~is_blq], color=colour, s=12, zorder=3)
    if is_blq.any():
        ax.scatter(data["day"][is_blq], level[is_blq], color=colour, **_BLQ_STYLE)
    return list(level)


def plot_spaghetti(
    concentrations: pd.DataFrame,
    subjects: pd.DataFrame | None,
    analyte: str,
    path: str | Path,
) -> Path:
    """PNG of every subject's profile of one analyte, coloured by dose level (log y).

    Quantifiable samples are filled dots joined by solid lines; BLQ samples are open
    triangles at their LLOQ, joined by dotted lines, so that a profile below the LLOQ is
    never read as a level. Subjects missing from the subject sheet are drawn under dose level
    ``unknown``. Screening samples (day < 0) are left out, as in the PK analyses.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    table = concentrations[concentrations["analyte"].astype(str) == analyte]
    subject_ids = sorted(table["subject_id"].astype(str).str.strip().unique())
    doses, colours = _dose_colours(subjects, subject_ids)
    levels = list(colours)

    fig = Figure(figsize=(7.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positive: list[float] = []
    for subject in subject_ids:
        rows = table[table["subject_id"].astype(str).str.strip() == subject]
        colour = colours[doses.get(subject, UNKNOWN_DOSE)]
        positive.extend(_draw_profile_line(ax, rows, colour))
    _log_axis(ax, positive)
    units = table["unit"].dropna().astype(str) if "unit" in table.columns else pd.Series()
    ax.set_ylabel(
        analyte_label(analyte)
        if analyte in ANALYTE_LABELS
        else (units.iloc[0] if len(units) else analyte)
    )
    ax.set_xlabel("day after CAR T infusion")
    ax.set_title(f"{analyte_label(analyte)}: every subject by dose level", fontsize=10)
    handles = [Line2D([0], [0], color=colours[d], label=f"dose {d}") for d in levels]
    handles.append(
        Line2D(
            [0],
            [0],
            color="gray",
            marker="v",
            markerfacecolor="none",
            linestyle="none",
            label="BLQ (at LLOQ)",
        )
    )
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    fixed_layout(fig)
    return _save(fig, path)
