"""Population kinetics: one hierarchical fit of the Stein 2019 model per CAR T analyte.

The rule is in docs/rules.md, "Population kinetics". The steps have a module each:

* :mod:`ckpk.pk.population_data`: the observations (the individual fit's rules), the
  subjects in the fit (non-responders left out) and the dose covariate;
* :mod:`ckpk.pk.population_model`: the numpyro model and its priors;
* :mod:`ckpk.pk.population_mcmc`: NUTS, 4 chains, one seed, convergence diagnostics;
* :mod:`ckpk.pk.population_tables`: ``pk/population_fit.tsv`` and
  ``pk/population_subjects.tsv``, values empty where the fit or the data cannot support
  them;
* :mod:`ckpk.pk.population_predict`: curves, predictions and the visual predictive check
  from the draws (plots: :mod:`ckpk.report.population_plots`).

An analyte is fitted when at least :data:`MIN_SUBJECTS` subjects have a quantifiable
reading; otherwise its rows say why not. Which analytes are fitted is a choice
(:func:`chosen_analytes`): by default only the primary one, the first of
:data:`PRIMARY_ORDER` with enough subjects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ckpk.pk.concentrations import car_t_profiles, validate_concentrations
from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, partial_auc_column
from ckpk.pk.population_data import PopulationData, population_data, subject_doses
from ckpk.pk.population_mcmc import CHAINS, DEFAULT_SEED, DRAWS, Samples, sample_posterior
from ckpk.pk.population_priors import cmax_prior
from ckpk.pk.population_tables import (
    FIT_COLUMNS,
    empty_subject_row,
    population_rows,
    subject_columns,
    subject_rows,
)

#: Fewest subjects (with a quantifiable reading) for a population fit. A between-subject
#: SD from n subjects has n − 1 degrees of freedom; below 6 its 95 % interval spans more
#: than a factor of 4 even when the curves are known exactly, and the model has five.
MIN_SUBJECTS = 6

#: The primary analyte is the first of these with :data:`MIN_SUBJECTS` fitted subjects.
#: Transgene copies by qPCR first: the measure CAR T population kinetics is modelled on
#: (Stein et al. 2019, CPT Pharmacometrics Syst Pharmacol 8:285; the tisagenlecleucel
#: and axicabtagene models likewise), then absolute CAR+ cells/µL, then % of CD3+ (a
#: ratio that also moves with the T cells around it).
PRIMARY_ORDER = ("car_copies_per_ug", "car_per_ul", "car_pct_cd3")

__all__ = [
    "FIT_COLUMNS",
    "MIN_SUBJECTS",
    "PRIMARY_ORDER",
    "AnalyteFit",
    "PopulationFit",
    "chosen_analytes",
    "fit_population",
    "subject_columns",
]


@dataclass
class AnalyteFit:
    """One analyte's fit: its data, draws (None when not fitted) and table rows."""

    data: PopulationData
    samples: Samples | None
    reason: str
    population: list[dict[str, object]]
    subjects: list[dict[str, object]]
    seconds: float = 0.0

    @property
    def fitted(self) -> bool:
        return self.samples is not None


@dataclass
class PopulationFit:
    """Every analyte's fit, and the two tables."""

    fits: dict[str, AnalyteFit] = field(default_factory=dict)
    end: float = DEFAULT_PARTIAL_AUC_END
    seed: int = DEFAULT_SEED

    @property
    def auc_column(self) -> str:
        return partial_auc_column(self.end)

    def population_table(self) -> pd.DataFrame:
        rows = [r for fit in self.fits.values() for r in fit.population]
        return pd.DataFrame(rows, columns=FIT_COLUMNS)

    def subjects_table(self) -> pd.DataFrame:
        rows = [r for fit in self.fits.values() for r in fit.subjects]
        return pd.DataFrame(rows, columns=subject_columns(self.auc_column))


def _dose_text(data: PopulationData) -> str:
    cov = data.covariate
    if cov.kind == "power":
        return f"power of dose, reference dose {cov.reference}"
    if cov.kind == "levels":
        return f"dose levels, reference level {cov.reference}"
    return "none (one dose)"


def _left_out_rows(
    data: PopulationData, subjects: pd.DataFrame | None, reasons: dict[str, str]
) -> list[dict[str, object]]:
    ids = sorted(reasons)
    levels, doses = subject_doses(subjects, ids)
    return [
        empty_subject_row(s, data.analyte, level, dose, reasons[s], data.unit)
        for s, level, dose in zip(ids, levels, doses, strict=True)
    ]


def fit_analyte(
    data: PopulationData,
    subjects: pd.DataFrame | None,
    end: float = DEFAULT_PARTIAL_AUC_END,
    seed: int = DEFAULT_SEED,
) -> AnalyteFit:
    """The population fit of one analyte's data (or its rows saying why there is none)."""
    prior = cmax_prior(data.analyte, data.median_peak() if data.n_subjects else math.nan)
    context: dict[str, object] = {
        "analyte": data.analyte,
        "n_subjects": data.n_subjects,
        "n_obs": data.n_obs,
        "n_blq": data.n_blq,
        "dose_covariate": _dose_text(data),
        "chains": CHAINS,
        "draws_per_chain": DRAWS,
        "seed": seed,
    }
    left_out = _left_out_rows(data, subjects, data.left_out)
    if data.n_subjects < MIN_SUBJECTS:
        reason = (
            f"no population fit: {data.n_subjects} subject(s) with a quantifiable reading "
            f"(fewer than {MIN_SUBJECTS})"
        )
        fitted = dict.fromkeys(data.subjects, reason)
        rows = population_rows(data, None, 0, context, prior.describe(), reason)
        return AnalyteFit(
            data, None, reason, rows, left_out + _left_out_rows(data, subjects, fitted)
        )
    start = time.perf_counter()
    samples = sample_posterior(data, prior.centre, seed)
    context["divergences"] = samples.divergences
    rows = population_rows(data, samples.sites, samples.divergences, context, prior.describe())
    per_subject = subject_rows(
        data, samples.sites, samples.divergences, end, partial_auc_column(end)
    )
    return AnalyteFit(data, samples, "", rows, per_subject + left_out, time.perf_counter() - start)


def chosen_analytes(
    profiles: pd.DataFrame, subjects: pd.DataFrame | None, choice: str | Sequence[str]
) -> list[str]:
    """The CAR T analytes of ``profiles`` to fit: ``all`` of them, the ``primary`` one (the
    first of :data:`PRIMARY_ORDER` with :data:`MIN_SUBJECTS` fitted subjects, else the first
    present, whose rows then say why it is not fitted), or those named."""
    present = sorted(set(profiles["analyte"].astype(str)))
    if choice == "all":
        return present
    if isinstance(choice, str) and choice != "primary":
        raise ValueError(f"analytes: {choice!r} is not one of primary, all or a list")
    if choice != "primary":
        return [a for a in present if a in set(choice)]
    ordered = [a for a in PRIMARY_ORDER if a in present]
    for analyte in ordered:
        if population_data(profiles, subjects, analyte).n_subjects >= MIN_SUBJECTS:
            return [analyte]
    return ordered[:1]


def fit_population(
    concentrations: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    end: float = DEFAULT_PARTIAL_AUC_END,
    seed: int = DEFAULT_SEED,
    analytes: str | Sequence[str] = "all",
) -> PopulationFit:
    """One population fit per CAR T analyte of a concentrations table (``subjects``: the
    subject sheet, for dose levels and doses); ``analytes`` as :func:`chosen_analytes`."""
    profiles = car_t_profiles(validate_concentrations(concentrations))
    names = chosen_analytes(profiles, subjects, analytes)
    result = PopulationFit(end=end, seed=seed)
    for analyte in names:
        data = population_data(profiles, subjects, analyte)
        result.fits[analyte] = fit_analyte(data, subjects, end, seed)
    return result
