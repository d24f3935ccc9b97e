"""BLQ handling of the model fit: censoring (M3) against dropping and substituting.

Simulated truth: 30 subjects around the published typical values (Stein 2019), residual
SD 0.3 on the log scale, monthly follow-up for a year. Each subject's LLOQ is set at its
own true level on day 150, so about half of the persistence-phase samples are BLQ (9-10
of 20 per profile) - the situation in which the handling of BLQ decides the persistence
estimates. The reference numbers are the simulation truth: the true model AUC from day
28 to 365 (persistence exposure) and the true level on day 180.

What was seen while building this (median log error over 30 subjects, four seeds):
censored +0.03..+0.04 (AUC 28-365) and -0.02..+0.04 (C180); dropping BLQ +0.21..+0.26
and +0.27..+0.31 (only the high readings survive); LLOQ/2 -0.10..-0.13 and -0.14..-0.24;
LLOQ +0.18..+0.20 and +0.19..+0.23. For the AUC over days 0-28, substitution biases
low (-0.08..-0.18, early BLQ taken as real levels flatten the expansion); with the model
chosen by AICc, dropping biases it too (about -0.2 with seed 4), while censoring stays
within ±0.05.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ckpk.pk.kinetics import TYPICAL, SteinParameters, stein_auc, stein_curve
from ckpk.pk.model import BLQ_HANDLING, fit_profile, parameters_from_row

MONTHLY_DAYS = np.array(
    [0, 1, 4, 7, 10, 14, 21, 28, 42, 56, 90, 120, 150, 180, 210, 240, 270, 300, 330, 365],
    dtype=float,
)


def _draw(rng: np.random.Generator) -> SteinParameters:
    eta = rng.normal(0.0, 1.0, 6)
    return SteinParameters(
        cmax=TYPICAL.cmax * math.exp(0.5 * eta[0]),
        tmax=TYPICAL.tmax * math.exp(0.25 * eta[1]),
        foldx=TYPICAL.foldx * math.exp(0.5 * eta[2]),
        alpha=TYPICAL.alpha * math.exp(0.3 * eta[3]),
        beta=TYPICAL.beta * math.exp(0.3 * eta[4]),
        fb=TYPICAL.fb * math.exp(0.5 * eta[5]),
    )


@pytest.fixture(scope="module")
def log_errors() -> dict[str, dict[str, np.ndarray]]:
    """log(estimate / truth) per BLQ handling and quantity, over 30 simulated subjects."""
    rng = np.random.default_rng(4)
    quantities = ("auc_28_365", "c180", "auc_0_28")
    errors = {h: {q: [] for q in quantities} for h in BLQ_HANDLING}
    n_blq = []
    for _ in range(30):
        truth = _draw(rng)
        lloq = float(stein_curve(150.0, truth))
        reading = stein_curve(MONTHLY_DAYS, truth) * np.exp(rng.normal(0, 0.3, MONTHLY_DAYS.size))
        blq = reading < lloq
        n_blq.append(int(blq.sum()))
        value = np.where(blq, 0.0, reading)
        true = {
            "auc_28_365": stein_auc(truth, 28.0, 365.0),
            "c180": float(stein_curve(180.0, truth)),
            "auc_0_28": stein_auc(truth, 0.0, 28.0),
        }
        for handling in BLQ_HANDLING:
            fit = fit_profile(MONTHLY_DAYS, value, blq, lloq, blq_handling=handling)
            p = _after_peak(fit)
            estimate = {
                "auc_28_365": stein_auc(p, 28.0, 365.0) if p else math.nan,
                "c180": float(stein_curve(180.0, p)) if p else math.nan,
                "auc_0_28": fit["auc_0_28"] if p else math.nan,
            }
            for q in quantities:
                errors[handling][q].append(math.log(estimate[q] / true[q]))
    assert np.median(n_blq) >= 8  # BLQ-heavy indeed
    return {h: {q: np.asarray(v) for q, v in d.items()} for h, d in errors.items()}


def _after_peak(fit: dict) -> SteinParameters | None:
    """The fitted curve for t >= Tmax, or None when a parameter it needs is not estimable.
    foldx shapes only the rise, so an unidentified foldx (an unseen rise) does not matter
    for the persistence-phase quantities; it is set to 2 for the curve function."""
    if math.isnan(fit.get("foldx", math.nan)) and fit.get("converged"):
        fit = {**fit, "foldx": 2.0}
    return parameters_from_row(fit)


def _bias(errors: np.ndarray) -> float:
    return float(np.nanmedian(errors))


@pytest.mark.parametrize("quantity", ["auc_28_365", "c180"])
def test_censored_fit_is_least_biased_in_the_persistence_phase(log_errors, quantity):
    censored = _bias(log_errors["censored"][quantity])
    assert abs(censored) < 0.1, censored
    # Most fits give the quantity; the others have a parameter it needs not estimable
    # (the peak or the persistence slope undetermined), reported empty rather than guessed.
    assert np.isnan(log_errors["censored"][quantity]).sum() <= 4
    for other in ("drop", "half_lloq", "lloq"):
        alternative = _bias(log_errors[other][quantity])
        assert abs(alternative) > 0.1, (other, alternative)
        assert abs(alternative) > 2 * abs(censored), (other, alternative, censored)
    # The direction is the textbook one: dropping keeps only the high readings.
    assert _bias(log_errors["drop"][quantity]) > 0.1


def test_substitution_biases_the_early_auc_and_censoring_does_not(log_errors):
    censored = _bias(log_errors["censored"]["auc_0_28"])
    assert abs(censored) < 0.05
    for other in ("half_lloq", "lloq"):
        assert _bias(log_errors[other]["auc_0_28"]) < -0.05
    # Dropping is no better: without the BLQ tail the model choice (AICc) often settles
    # on a single decline that misses the persistence level.
    assert abs(_bias(log_errors["drop"]["auc_0_28"])) > abs(censored)
