"""What the population fit's draws say about curves: per-subject parameters, AUCs,
individual and population predictions, and simulated trials for the visual predictive
check. Plain numpy over the draws (no JAX), so plots and tables need no compilation.

Draws are taken in a fixed thinned order (:func:`thin`), and simulations use
``numpy.random.default_rng(seed)``, so the same fit always gives the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ckpk.pk.population_data import PopulationData

#: Draws used for curves and simulations (of 2,000): enough for 5-95 % bands.
CURVE_DRAWS = 200
#: Virtual subjects per draw and dose level in the visual predictive check.
VPC_SUBJECTS = 10


@dataclass(frozen=True)
class Individual:
    """Every draw's parameters of every subject: arrays draws × subjects (foldx draws)."""

    cmax: np.ndarray
    tmax: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    fb: np.ndarray
    foldx: np.ndarray  # draws × 1 (one typical value)

    def take(self, rows: np.ndarray) -> Individual:
        return Individual(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def individual_parameters(sites: dict[str, np.ndarray]) -> Individual:
    """The subjects' natural-scale parameters from the sampled sites (chains flattened)."""
    ind = sites["individual"].reshape(-1, *sites["individual"].shape[2:])
    foldx = np.exp(sites["log_foldx"].reshape(-1, 1))
    return Individual(
        np.exp(ind[..., 0]),
        np.exp(ind[..., 1]),
        np.exp(ind[..., 2]),
        np.exp(ind[..., 3]),
        expit(ind[..., 4]),
        foldx,
    )


def curve(t: np.ndarray, p: Individual) -> np.ndarray:
    """The Stein curve (:func:`ckpk.pk.kinetics.stein_curve`) for arrays of parameters:
    parameters shaped (..., 1) against days ``t`` give (..., days)."""
    t = np.asarray(t, dtype=float)
    rho = np.log(p.foldx) / p.tmax
    rising = p.cmax / p.foldx * np.exp(rho * np.minimum(t, p.tmax))
    dt = np.maximum(t - p.tmax, 0.0)
    falling = p.cmax * ((1.0 - p.fb) * np.exp(-p.alpha * dt) + p.fb * np.exp(-p.beta * dt))
    return np.where(t < p.tmax, rising, falling)


def auc(p: Individual, end: float) -> np.ndarray:
    """Exact AUC over [0, end] (:func:`ckpk.pk.kinetics.stein_auc`), elementwise."""
    rho = np.log(p.foldx) / p.tmax
    rise_end = np.minimum(end, p.tmax)
    rising = p.cmax / p.foldx / rho * np.expm1(rho * rise_end)
    span = np.maximum(end - p.tmax, 0.0)
    falling = p.cmax * (
        (1.0 - p.fb) / p.alpha * -np.expm1(-p.alpha * span)
        + p.fb / p.beta * -np.expm1(-p.beta * span)
    )
    return rising + falling


def thin(n_draws: int, keep: int = CURVE_DRAWS) -> np.ndarray:
    """Evenly spaced draw indices (all chains), the same for every call."""
    return np.unique(np.linspace(0, n_draws - 1, min(keep, n_draws)).astype(int))


def typical_parameters(sites: dict[str, np.ndarray], covariate_rows: np.ndarray) -> Individual:
    """Every draw's typical curve of every subject (η = 0, its own dose): draws × subjects."""
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in sites.items()}
    log_cmax = flat["log_cmax"][:, None] + np.zeros((1, covariate_rows.shape[0]))
    if covariate_rows.shape[1]:
        log_cmax = log_cmax + flat["dose_effect"] @ covariate_rows.T
    ones = np.ones_like(log_cmax)
    return Individual(
        np.exp(log_cmax),
        np.exp(flat["log_tmax"])[:, None] * ones,
        np.exp(flat["log_alpha"])[:, None] * ones,
        np.exp(flat["log_beta"])[:, None] * ones,
        expit(flat["logit_fb"])[:, None] * ones,
        np.exp(flat["log_foldx"])[:, None],
    )


def predictions(sites: dict[str, np.ndarray], data: PopulationData) -> dict[str, np.ndarray]:
    """Per observation: the individual prediction (posterior median of the subject's curve)
    and the population prediction (median of the typical curve at the subject's dose)."""
    rows = thin(int(np.prod(sites["log_cmax"].shape[:2])))
    out = {}
    for name, params in (
        ("ipred", individual_parameters(sites)),
        ("pred", typical_parameters(sites, data.covariate.rows)),
    ):
        p = params.take(rows)
        at = Individual(
            *(
                getattr(p, f)[:, data.subject_index]
                for f in ("cmax", "tmax", "alpha", "beta", "fb")
            ),
            p.foldx,
        )
        out[name] = np.median(curve(data.day[None, :], at), axis=0)
    return out


def subject_bands(
    sites: dict[str, np.ndarray], days: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subject and day: the 2.5 %, 50 % and 97.5 % points of its curve's posterior."""
    p = individual_parameters(sites)
    p = p.take(thin(p.cmax.shape[0]))
    at = Individual(*(getattr(p, f)[..., None] for f in p.__dataclass_fields__))
    at = Individual(at.cmax, at.tmax, at.alpha, at.beta, at.fb, p.foldx[:, :, None])
    levels = curve(days[None, None, :], at)
    low, mid, high = np.quantile(levels, [0.025, 0.5, 0.975], axis=0)
    return low, mid, high


def simulate_vpc(
    sites: dict[str, np.ndarray], covariate_row: np.ndarray, days: np.ndarray, seed: int
) -> np.ndarray:
    """5 %, 50 % and 95 % points (3 × days) of readings simulated for new subjects at one
    dose: per thinned draw, :data:`VPC_SUBJECTS` subjects with η ~ N(0, ω) and readings with
    ε ~ N(0, σ); BLQ is not applied, the LLOQ is drawn beside the bands."""
    rng = np.random.default_rng(seed)
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in sites.items()}
    rows = thin(flat["log_cmax"].shape[0])
    typical = np.stack(
        [flat[k][rows] for k in ("log_cmax", "log_tmax", "log_alpha", "log_beta", "logit_fb")],
        axis=1,
    )
    if covariate_row.size:
        typical[:, 0] += flat["dose_effect"][rows] @ covariate_row
    omega, sigma = flat["omega"][rows], flat["sigma"][rows]
    eta = rng.standard_normal((rows.size, VPC_SUBJECTS, 5)) * omega[:, None, :]
    value = typical[:, None, :] + eta
    p = Individual(
        np.exp(value[..., 0:1]),
        np.exp(value[..., 1:2]),
        np.exp(value[..., 2:3]),
        np.exp(value[..., 3:4]),
        expit(value[..., 4:5]),
        np.exp(flat["log_foldx"][rows])[:, None, None],
    )
    levels = curve(days[None, None, :], p)
    noise = rng.standard_normal(levels.shape) * sigma[:, None, None]
    readings = levels * np.exp(noise)
    return np.quantile(readings.reshape(-1, days.size), [0.05, 0.5, 0.95], axis=0)
