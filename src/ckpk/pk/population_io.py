"""Reading the inputs of a population fit and writing its tables and figures: the one
path the ``ckpk popfit`` command and the workflow's rule ``pk_popfit`` share."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd

from ckpk.pk.concentrations import car_t_profiles, read_concentrations, validate_concentrations
from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, partial_auc_column
from ckpk.pk.population import (
    FIT_COLUMNS,
    AnalyteFit,
    chosen_analytes,
    fit_analyte,
    subject_columns,
)
from ckpk.pk.population_cache import CachedFit, PopulationCache
from ckpk.pk.population_data import population_data
from ckpk.pk.population_mcmc import DEFAULT_SEED
from ckpk.tables import write_tsv


def describe(analyte: str, fit: AnalyteFit) -> str:
    """One line for the log: subjects, time, sampler, what failed."""
    if not fit.fitted:
        return f"{analyte}: {fit.reason}"
    failed = [str(r["parameter"]) for r in fit.population if not r["converged"]]
    return (
        f"{analyte}: {fit.data.n_subjects} subjects, {fit.data.n_obs} readings "
        f"({fit.data.n_blq} BLQ), {fit.seconds:.1f} s, {fit.samples.divergences} "
        f"divergent transitions, {fit.samples.mean_steps:.0f} leapfrog steps per draw "
        f"({fit.samples.chain_method} chains); empty: {', '.join(failed) or 'none'}"
    )


def _fit_or_reuse(
    analyte: str,
    profiles: pd.DataFrame,
    sheet: pd.DataFrame | None,
    plots: Path,
    cache: PopulationCache,
    end: float,
    seed: int,
) -> tuple[CachedFit, str]:
    """``analyte``'s rows and figures (written into ``plots``) and its log line: from the
    cache when its readings, doses and settings are unchanged, else fitted and kept."""
    from ckpk.report.population_plots import draw_population_figures

    readings = profiles[profiles["analyte"].astype(str) == analyte]
    key = cache.key(analyte, readings, sheet, end, seed)
    kept = cache.get(key)
    if kept is not None:
        for figure in kept.figures:
            shutil.copyfile(figure, plots / figure.name)
        return kept, f"{kept.log_line} [readings, doses and settings unchanged: cached fit]"
    fit = fit_analyte(population_data(profiles, sheet, analyte), sheet, end, seed)
    figures = draw_population_figures({analyte: fit}, plots, seed)
    line = describe(analyte, fit)
    cache.put(key, fit.population, fit.subjects, line, figures)
    return CachedFit(fit.population, fit.subjects, line, tuple(figures)), line


def run_popfit(
    concentrations: str | Path,
    subjects: str | Path | None,
    fit_path: str | Path,
    subjects_path: str | Path,
    plots_dir: str | Path,
    end: float = DEFAULT_PARTIAL_AUC_END,
    seed: int = DEFAULT_SEED,
    analytes: str | Sequence[str] = "primary",
    cache_dir: str | Path | None = None,
    log: TextIO | None = None,
) -> list[str]:
    """Fit the chosen CAR T analytes of ``concentrations`` (:func:`chosen_analytes`); write
    both tables and the figures. With ``cache_dir``, an analyte whose readings, doses and
    settings are unchanged since the last run is taken from the cache
    (:mod:`ckpk.pk.population_cache`). Returns the log lines."""
    sheet = None
    if subjects:
        from ckpk.inputs import read_subjects

        sheet = read_subjects(subjects)
    profiles = car_t_profiles(validate_concentrations(read_concentrations(concentrations)))
    plots = Path(plots_dir)
    plots.mkdir(parents=True, exist_ok=True)
    cache = PopulationCache(cache_dir)
    population: list[dict[str, object]] = []
    per_subject: list[dict[str, object]] = []
    lines: list[str] = []
    n_figures = 0
    for analyte in chosen_analytes(profiles, sheet, analytes):
        kept, line = _fit_or_reuse(analyte, profiles, sheet, plots, cache, end, seed)
        population += kept.population
        per_subject += kept.subjects
        n_figures += len(kept.figures)
        lines.append(line)
    cache.prune()
    for path in (fit_path, subjects_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_tsv(pd.DataFrame(population, columns=FIT_COLUMNS), fit_path, sort_by=["analyte"])
    columns = subject_columns(partial_auc_column(end))
    write_tsv(
        pd.DataFrame(per_subject, columns=columns),
        subjects_path,
        sort_by=["analyte", "subject_id"],
    )
    lines.append(f"{n_figures} figures")
    for line in lines:
        print(line, file=log or sys.stderr)
    return lines
