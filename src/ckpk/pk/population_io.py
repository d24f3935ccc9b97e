"""Reading the inputs of a population fit and writing its tables and figures: the one
path the ``ckpk popfit`` command and the workflow's rule ``pk_popfit`` share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ckpk.pk.concentrations import read_concentrations
from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END
from ckpk.pk.population import FIT_COLUMNS, PopulationFit, fit_population, subject_columns
from ckpk.pk.population_mcmc import DEFAULT_SEED
from ckpk.tables import write_tsv


def describe(result: PopulationFit) -> list[str]:
    """One line per analyte for the log: subjects, time, sampler, what failed."""
    lines = []
    for analyte, fit in sorted(result.fits.items()):
        if not fit.fitted:
            lines.append(f"{analyte}: {fit.reason}")
            continue
        failed = [str(r["parameter"]) for r in fit.population if not r["converged"]]
        lines.append(
            f"{analyte}: {fit.data.n_subjects} subjects, {fit.data.n_obs} readings "
            f"({fit.data.n_blq} BLQ), {fit.seconds:.1f} s, {fit.samples.divergences} "
            f"divergent transitions, {fit.samples.mean_steps:.0f} leapfrog steps per draw "
            f"({fit.samples.chain_method} chains); empty: {', '.join(failed) or 'none'}"
        )
    return lines


def run_popfit(
    concentrations: str | Path,
    subjects: str | Path | None,
    fit_path: str | Path,
    subjects_path: str | Path,
    plots_dir: str | Path,
    end: float = DEFAULT_PARTIAL_AUC_END,
    seed: int = DEFAULT_SEED,
    log: TextIO | None = None,
) -> PopulationFit:
    """Fit every CAR T analyte of ``concentrations``; write both tables and the figures."""
    from ckpk.report.population_plots import draw_population_figures

    sheet = None
    if subjects:
        from ckpk.inputs import read_subjects

        sheet = read_subjects(subjects)
    result = fit_population(read_concentrations(concentrations), sheet, end=end, seed=seed)
    for path in (fit_path, subjects_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_tsv(result.population_table(), fit_path, columns=FIT_COLUMNS, sort_by=["analyte"])
    write_tsv(
        result.subjects_table(),
        subjects_path,
        columns=subject_columns(result.auc_column),
        sort_by=["analyte", "subject_id"],
    )
    figures = draw_population_figures(result.fits, plots_dir, seed)
    for line in [*describe(result), f"{len(figures)} figures"]:
        print(line, file=log or sys.stderr)
    return result
