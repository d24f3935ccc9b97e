"""Standard errors of the model estimates (the ``*_se`` columns of ``pk/model_fits.tsv``).

They come from the observed information: the Hessian of the negative log-likelihood on
the transformed scale (central differences of the analytic gradient), inverted, then
carried to each reported quantity by the delta method (numerical gradient of the
quantity with respect to the transformed parameters). The covariance is scaled by
n/(n − k) (n observations, k parameters including σ), the degrees-of-freedom correction
of R's ``nls``, because the ML σ is biased low in profiles of ~14 samples. Parameters
sitting on a bound, and Tmax at a likelihood corner, are held fixed (no variance). An
approximate 95 % interval for a positive quantity x is ``x · exp(±1.96 · x_se / x)``.
"""

from __future__ import annotations

import numpy as np

from ckpk.pk.fitting import Fit
from ckpk.pk.likelihood import (
    IDX_FULL,
    IDX_REDUCED,
    THETA_NAMES,
    ProfileData,
    estimates,
    neg_log_likelihood,
)
from ckpk.pk.parameters import MODEL_ESTIMATES

#: An eigenvalue of the information matrix below this fraction of the largest marks a
#: direction the likelihood does not constrain (near-singular information).
NEAR_SINGULAR = 1e-8
#: A reported quantity whose log changes by more than this per unit step along a flat
#: direction (a step of one in the transformed, mostly logarithmic, parameters: about an
#: e-fold in the loosest one) is not estimable: the data leave it undetermined.
RIDGE_SENSITIVITY = 0.05


def ridge_quantities(
    fit: Fit, data: ProfileData, end: float, free_hessian: tuple[np.ndarray, np.ndarray]
) -> list[str]:
    """Estimates (:data:`~ckpk.pk.parameters.MODEL_ESTIMATES` names) that move along a
    direction in which the information matrix is singular or nearly so: a ridge of the
    likelihood, along which the data cannot tell the values apart. A quantity the ridge
    barely moves (e.g. the AUC while foldx slides along it) stays estimable."""
    idx, hess = free_hessian
    names = [p.name(end) for p in MODEL_ESTIMATES]
    if idx.size == 0:
        return []
    if not np.all(np.isfinite(hess)):
        return names
    values, vectors = np.linalg.eigh(hess)
    weak = vectors[:, values <= NEAR_SINGULAR * max(float(values[-1]), 1e-300)]
    if weak.size == 0:
        return []
    base = np.abs(estimates(fit.theta, fit.full, end))
    moved = set()
    for direction in weak.T:
        step = np.zeros_like(fit.theta)
        step[idx] = direction * 1e-4
        with np.errstate(divide="ignore", invalid="ignore"):
            shifted = np.abs(estimates(fit.theta + step, fit.full, end))
            slope = np.abs(np.log(shifted) - np.log(base)) / 1e-4
        moved |= {i for i, s in enumerate(slope) if np.isfinite(s) and s > RIDGE_SENSITIVITY}
    return [names[i] for i in sorted(moved)]


def free_hessian_of(fit: Fit, data: ProfileData) -> tuple[np.ndarray, np.ndarray]:
    """Hessian of the negative log-likelihood over the free transformed parameters."""
    idx = IDX_FULL if fit.full else IDX_REDUCED
    free = np.array(
        [THETA_NAMES[i] not in fit.at_bound and not (fit.corner and i == 1) for i in idx]
    )
    idx = idx[free]
    h = 1e-5
    hess = np.empty((idx.size, idx.size))
    for col, i in enumerate(idx):
        up, down = fit.theta.copy(), fit.theta.copy()
        up[i] += h
        down[i] -= h
        hess[:, col] = (
            neg_log_likelihood(up, data, fit.full)[1][idx]
            - neg_log_likelihood(down, data, fit.full)[1][idx]
        ) / (2 * h)
    return idx, 0.5 * (hess + hess.T)


def standard_errors(
    fit: Fit,
    data: ProfileData,
    end: float,
    free_hessian: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, str | None]:
    """Delta-method SEs of :data:`~ckpk.pk.parameters.MODEL_ESTIMATES`, or NaN and why not."""
    idx, hess = free_hessian or free_hessian_of(fit, data)
    nan = np.full(len(MODEL_ESTIMATES), np.nan)
    if not np.all(np.isfinite(hess)):
        return nan, "standard errors unavailable: information matrix not finite"
    eig = np.linalg.eigvalsh(hess)
    if eig[0] <= 1e-10 * max(eig[-1], 1e-300):
        return nan, "standard errors unavailable: information matrix not positive definite"
    cov = np.linalg.inv(hess)
    # Small-sample correction: the ML estimate of sigma is biased low by about (n - k)/n
    # with 14 samples and 7 parameters; scaling by n/(n - k) is the degrees-of-freedom
    # correction of nls(). Without it, simulated 95 % intervals covered the truth ~82 %.
    if data.n > fit.k:
        cov *= data.n / (data.n - fit.k)
    jac = np.empty((len(MODEL_ESTIMATES), idx.size))
    for col, i in enumerate(idx):
        step = 1e-6 * max(1.0, abs(fit.theta[i]))
        up, down = fit.theta.copy(), fit.theta.copy()
        up[i] += step
        down[i] -= step
        jac[:, col] = (estimates(up, fit.full, end) - estimates(down, fit.full, end)) / (2 * step)
    var = np.einsum("ij,jk,ik->i", jac, cov, jac)
    return np.sqrt(np.maximum(var, 0.0)), None
