"""All PK figures of a run: one model-fit plot per subject × analyte, one spaghetti
plot per analyte (the drawing itself is in :mod:`ckpk.report.pk_plots`)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ckpk.pk.concentrations import car_t_profiles
from ckpk.report.figure_cache import FigureCache
from ckpk.report.pk_plots import analyte_label, plot_fit, plot_spaghetti


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def draw_pk_figures(
    concentrations: pd.DataFrame,
    nca: pd.DataFrame,
    fits: pd.DataFrame,
    subjects: pd.DataFrame,
    fits_dir: str | Path,
    spaghetti_dir: str | Path,
    cache: FigureCache | None = None,
) -> list[Path]:
    """Write ``<fits_dir>/<subject>_<analyte>.png`` (CAR T analytes) and
    ``<spaghetti_dir>/<analyte>.png`` (every analyte, B cells included); figures whose
    data did not change since the last run are copied from ``cache``."""
    cache = cache or FigureCache(None)
    fits_dir, spaghetti_dir = Path(fits_dir), Path(spaghetti_dir)
    fits_dir.mkdir(parents=True, exist_ok=True)
    spaghetti_dir.mkdir(parents=True, exist_ok=True)
    fit_rows = {(str(r["subject_id"]), str(r["analyte"])): r for r in fits.to_dict("records")}
    nca_rows = {(str(r["subject_id"]), str(r["analyte"])): r for r in nca.to_dict("records")}
    written = []
    for (subject, analyte), profile in car_t_profiles(concentrations).groupby(
        ["subject_id", "analyte"]
    ):
        key = (str(subject), str(analyte))
        path = fits_dir / f"{_safe(key[0])}_{_safe(key[1])}.png"
        title = f"Subject {subject}: {analyte_label(str(analyte))}"
        fit, level = fit_rows.get(key), nca_rows.get(key)
        written.append(cache.figure(path, plot_fit, profile, fit, level, path, title=title))
    for analyte in sorted(concentrations["analyte"].astype(str).unique()):
        path = spaghetti_dir / f"{_safe(analyte)}.png"
        shown = concentrations[concentrations["analyte"].astype(str) == analyte]
        written.append(
            cache.figure(
                path,
                plot_spaghetti,
                concentrations,
                subjects,
                analyte,
                path,
                shown=(shown, subjects, analyte),
            )
        )
    return written
