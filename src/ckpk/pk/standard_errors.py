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


def standard_errors(fit: Fit, data: ProfileData, end: float) -> tuple[np.ndarray, str | None]:
    """Delta-method SEs of :data:`~ckpk.pk.parameters.MODEL_ESTIMATES`, or NaN and why not."""
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
    hess = 0.5 * (hess + hess.T)
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
