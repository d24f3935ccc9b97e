"""Figures of the population fit: the visual predictive check by dose, observed against
individual and population predictions, and each subject's curve with its credible band.

matplotlib through ``Figure`` + the Agg canvas, never ``pyplot`` (as
:mod:`ckpk.report.pk_plots`). A fit that failed its convergence checks is drawn all the
same, with "NOT CONVERGED" and the reason in the title, so that no figure passes it off
as good.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ckpk.cells import safe_file_name
from ckpk.pk.population import AnalyteFit
from ckpk.pk.population_predict import predictions, simulate_vpc, subject_bands
from ckpk.pk.summary import natural_key
from ckpk.report.pk_plots import _BLQ_STYLE, _log_axis, _save, fixed_layout

_GRID_POINTS = 240


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _status(fit: AnalyteFit) -> str:
    """'' for a fit that passed; else what failed, for the figure's title."""
    failed = [r for r in fit.population if not r["converged"] and "inform" not in r["flags"]]
    if not failed:
        return ""
    return f"NOT CONVERGED: {failed[0]['flags'].split(';')[0]}"


def _grid(fit: AnalyteFit) -> np.ndarray:
    last = float(fit.data.day.max()) if fit.data.n_obs else 28.0
    # Dense over the first weeks, where the curve rises and turns.
    early = np.linspace(0.0, min(42.0, last), _GRID_POINTS // 2)
    late = np.linspace(min(42.0, last), last, _GRID_POINTS // 2)
    return np.union1d(early, late)


def _observed(ax: object, fit: AnalyteFit, mask: np.ndarray) -> list[float]:
    """Quantifiable readings (dots) and BLQ readings at their LLOQ (open triangles)."""
    data = fit.data
    level = np.exp(data.log_value)
    quant = mask & ~data.censored
    blq = mask & data.censored
    if quant.any():
        ax.scatter(data.day[quant], level[quant], s=14, color="black", zorder=3, label="observed")
    if blq.any():
        style = {"color": "tab:red", "zorder": 3, **_BLQ_STYLE}
        ax.scatter(data.day[blq], level[blq], label="BLQ (at LLOQ)", **style)
    return list(level[mask])


def _level_order(data: object, levels: np.ndarray, level: str) -> tuple:
    """Dose levels by their dose where known, then in natural order (DL2 before DL10)."""
    doses = data.dose[(levels == level) & np.isfinite(data.dose)]
    return (float(doses.min()) if doses.size else np.inf, natural_key(level))


def _dose_groups(fit: AnalyteFit) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, subject mask, covariate row) per dose level (one group without a covariate)."""
    data = fit.data
    levels = np.asarray(data.dose_level)
    groups = []
    for level in sorted(set(levels), key=lambda x: _level_order(data, levels, x)):
        first = int(np.flatnonzero(levels == level)[0])
        groups.append((level, levels == level, data.covariate.rows[first]))
    if data.covariate.kind == "none":
        return [("all", np.ones(len(levels), bool), data.covariate.rows[0])]
    return groups


def _panel_layout(fig: object, width: float) -> None:
    """Fixed margins for a row of panels under a title, as :func:`fixed_layout` (which
    spares the second drawing of a tight layout): 0.9 inch left for the labels."""
    fig.subplots_adjust(  # type: ignore[attr-defined]
        left=0.9 / width, right=1 - 0.2 / width, bottom=0.12, top=0.86, wspace=0.3
    )


def plot_vpc(fit: AnalyteFit, path: str | Path, seed: int) -> Path:
    """Observed readings over the 5-50-95 % band of readings simulated for new subjects at
    each dose level (one panel per level)."""
    groups = _dose_groups(fit)
    width = 4.2 * len(groups)
    fig = _figure(width, 4.0)
    days = _grid(fit)
    for k, (label, members, row) in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), k + 1)
        low, mid, high = simulate_vpc(fit.samples.sites, row, days, seed + k)
        ax.fill_between(days, low, high, color="tab:blue", alpha=0.2, label="simulated 5-95 %")
        ax.plot(days, mid, color="tab:blue", linewidth=1.2, label="simulated median")
        shown = _observed(ax, fit, members[fit.data.subject_index])
        _log_axis(ax, [v for v in [*shown, *mid] if v > 0])
        ax.set_xscale("symlog", linthresh=28.0)
        ax.set_xlim(left=0.0)
        n = int(members.sum())
        ax.set_title(f"{label} ({n} subject{'s' * (n != 1)})", fontsize=9)
        ax.set_xlabel("day after infusion")
        if k == 0:
            ax.set_ylabel(fit.data.unit or "level")
            ax.legend(fontsize=7, loc="lower left")
    status = _status(fit)
    fig.suptitle(f"{fit.data.analyte}: visual predictive check {status}".strip(), fontsize=10)
    _panel_layout(fig, width)
    return _save(fig, path)


def plot_goodness_of_fit(fit: AnalyteFit, path: str | Path) -> Path:
    """Observed against individual and population predictions (quantifiable readings)."""
    data = fit.data
    pred = predictions(fit.samples.sites, data)
    quant = ~data.censored
    observed = np.exp(data.log_value[quant])
    fig = _figure(8.4, 4.2)
    for k, (name, title) in enumerate(
        (("ipred", "individual prediction"), ("pred", "population prediction"))
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        predicted = pred[name][quant]
        ax.scatter(predicted, observed, s=12, color="black", alpha=0.7)
        values = np.concatenate([observed, predicted])
        values = values[values > 0]
        lo, hi = (values.min() / 2, values.max() * 2) if values.size else (1.0, 10.0)
        ax.plot([lo, hi], [lo, hi], color="tab:red", linewidth=1, label="identity")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"{title} ({data.unit})")
        ax.set_ylabel(f"observed ({data.unit})")
        ax.set_title(title, fontsize=9)
    status = _status(fit)
    note = f"{data.n_blq} BLQ readings not shown"
    fig.suptitle(f"{data.analyte}: observed vs predicted; {note} {status}".strip(), fontsize=10)
    _panel_layout(fig, 8.4)
    return _save(fig, path)


def plot_subjects(fit: AnalyteFit, folder: str | Path) -> list[Path]:
    """One figure per fitted subject: readings, posterior median curve and 95 % band."""
    data = fit.data
    days = _grid(fit)
    low, mid, high = subject_bands(fit.samples.sites, days)
    status = _status(fit)
    written = []
    for i, subject in enumerate(data.subjects):
        fig = _figure(6.0, 4.0)
        ax = fig.add_subplot()
        ax.fill_between(days, low[i], high[i], color="tab:blue", alpha=0.2, label="95 % band")
        ax.plot(days, mid[i], color="tab:blue", linewidth=1.2, label="posterior median")
        shown = _observed(ax, fit, data.subject_index == i)
        _log_axis(ax, [v for v in [*shown, *mid[i]] if v > 0])
        ax.set_xscale("symlog", linthresh=28.0)
        ax.set_xlim(left=0.0)
        ax.set_xlabel("day after infusion")
        ax.set_ylabel(data.unit or "level")
        title = f"{subject} {data.analyte} ({data.dose_level[i]}) population fit {status}"
        ax.set_title(title.strip(), fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
        fixed_layout(fig)
        name = f"subject_{safe_file_name(subject)}_{safe_file_name(data.analyte)}.png"
        written.append(_save(fig, Path(folder) / name))
    return written


def draw_population_figures(
    fits: dict[str, AnalyteFit], folder: str | Path, seed: int
) -> list[Path]:
    """Every figure of every fitted analyte into ``folder`` (created even when empty)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for analyte, fit in sorted(fits.items()):
        if not fit.fitted:
            continue
        name = safe_file_name(analyte)
        written.append(plot_vpc(fit, folder / f"vpc_{name}.png", seed))
        written.append(plot_goodness_of_fit(fit, folder / f"gof_{name}.png"))
        written += plot_subjects(fit, folder)
    return written
