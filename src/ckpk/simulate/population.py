"""Sparse population trials drawn from known population parameters.

The population fit (:mod:`ckpk.pk.population`) is checked against trials whose truth is
stated here: subjects spread over dose levels, each with the Stein 2019 curve drawn from
the very hierarchy the fit assumes (log-normal Cmax, Tmax, α, β; logit-normal Fb; dose as
a power covariate on Cmax; one foldx), a few samples each at random visit days, a
log-normal reading error and readings below the LLOQ reported as BLQ. The demo trial
(:mod:`ckpk.simulate.trial`) is rich and follows the workflow; this one is small and
fast, for recovery and calibration tests and benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ckpk.pk.concentrations import CONCENTRATION_COLUMNS
from ckpk.pk.kinetics import TYPICAL, SteinParameters, stein_auc, stein_curve

#: Visit days a sparse design picks from (day 0 = infusion).
SPARSE_DAYS = (1.0, 4.0, 7.0, 10.0, 14.0, 21.0, 28.0, 42.0, 56.0, 90.0, 180.0, 270.0)


@dataclass(frozen=True)
class PopulationTruth:
    """Population parameters of a simulated trial (cells/µL-like units).

    ``cmax`` is the typical peak at ``reference_dose``; a subject's typical peak is
    ``cmax · (dose / reference_dose) ** dose_exponent``. ``omega`` holds the SDs of the
    between-subject effects (log scale; logit for fb); ``sigma`` the reading error (log).
    """

    cmax: float = 60.0
    tmax: float = TYPICAL.tmax
    foldx: float = TYPICAL.foldx
    alpha: float = TYPICAL.alpha
    beta: float = TYPICAL.beta
    fb: float = 0.02
    dose_exponent: float = 0.5
    reference_dose: float = 1.0e6
    omega: dict[str, float] = field(
        default_factory=lambda: {"cmax": 0.5, "tmax": 0.25, "alpha": 0.35, "beta": 0.4, "fb": 0.5}
    )
    sigma: float = 0.25
    lloq: float = 0.5


@dataclass(frozen=True)
class SimulatedPopulation:
    """A simulated trial: the concentrations table, the subject sheet and the truth."""

    concentrations: pd.DataFrame
    subjects: pd.DataFrame
    truth: pd.DataFrame  # per subject: cmax, tmax, foldx, alpha, beta, fb, auc_0_28
    population: PopulationTruth


def _subject_parameters(
    rng: np.random.Generator, truth: PopulationTruth, dose: float
) -> SteinParameters:
    eta = {name: rng.normal(0.0, sd) for name, sd in truth.omega.items()}
    logit_fb = math.log(truth.fb / (1.0 - truth.fb)) + eta["fb"]
    cmax = truth.cmax * (dose / truth.reference_dose) ** truth.dose_exponent
    return SteinParameters(
        cmax=cmax * math.exp(eta["cmax"]),
        tmax=truth.tmax * math.exp(eta["tmax"]),
        foldx=truth.foldx,
        alpha=truth.alpha * math.exp(eta["alpha"]),
        beta=truth.beta * math.exp(eta["beta"]),
        fb=1.0 / (1.0 + math.exp(-logit_fb)),
    )


def simulate_population(
    n_subjects: int = 30,
    doses: dict[str, float] | None = None,
    samples: tuple[int, int] = (6, 8),
    seed: int = 1,
    truth: PopulationTruth | None = None,
    analyte: str = "car_per_ul",
) -> SimulatedPopulation:
    """A sparse trial: subjects assigned to dose levels in turn, ``samples`` (min, max)
    visits each drawn from :data:`SPARSE_DAYS` (always one in the first two weeks, so that
    every subject has a chance to show its rise), readings below ``truth.lloq`` BLQ."""
    truth = truth or PopulationTruth()
    doses = doses or {"DL1": 1.0e5, "DL2": 3.0e5, "DL3": 1.0e6}
    rng = np.random.default_rng(seed)
    levels = list(doses)
    rows, subjects, true_rows = [], [], []
    for i in range(n_subjects):
        subject = f"P{i + 1:03d}"
        level = levels[i % len(levels)]
        p = _subject_parameters(rng, truth, doses[level])
        n = int(rng.integers(samples[0], samples[1] + 1))
        early = rng.choice([d for d in SPARSE_DAYS if d <= 14.0], size=1)
        rest = rng.choice([d for d in SPARSE_DAYS if d not in early], size=n - 1, replace=False)
        days = np.sort(np.concatenate([early, rest]))
        level_true = stein_curve(days, p)
        readings = level_true * np.exp(rng.normal(0.0, truth.sigma, size=days.size))
        for day, value in zip(days, readings, strict=True):
            blq = bool(value < truth.lloq)
            rows.append(
                {
                    "subject_id": subject,
                    "analyte": analyte,
                    "day": float(day),
                    "value": math.nan if blq else float(value),
                    "unit": "cells/uL",
                    "blq": blq,
                    "lloq": truth.lloq,
                    "source": "simulated",
                }
            )
        subjects.append({"subject_id": subject, "dose_level": level, "dose": doses[level]})
        true_rows.append({"subject_id": subject, **p.as_dict(), "auc_0_28": stein_auc(p, 0, 28)})
    return SimulatedPopulation(
        pd.DataFrame(rows, columns=CONCENTRATION_COLUMNS),
        pd.DataFrame(subjects),
        pd.DataFrame(true_rows),
        truth,
    )
