"""The likelihood of one profile under the Stein 2019 curve (docs/rules.md, "Kinetic model").

* Log scale: ``log y_i = log C(t_i; θ) + ε_i``, ``ε_i ~ N(0, σ²)`` (a log-normal,
  i.e. proportional, residual error as in the paper). σ is estimated.
* BLQ samples are left-censored observations (Beal's M3 method): each adds
  ``log Φ((log LLOQ_i − log C(t_i)) / σ)``, the probability of reading below its LLOQ,
  to the log-likelihood. They are neither zeros nor dropped.
* Screening samples (day < 0) are left out; day 0 (the infusion) is kept, where the
  model level is ``Cmax / foldx``.
* The parameter vector θ is on a transformed scale (:data:`THETA_NAMES`):
  ``log Cmax, log Tmax, log(foldx − 1), log α, logit(β/α), logit Fb, log σ``. Writing β
  as a fraction of α removes the label switching between the two exponentials and
  keeps the persistence phase the slower one. The reduced model (Fb = 0) uses the
  entries :data:`IDX_REDUCED`.

The curve itself is :func:`ckpk.pk.kinetics.stein_curve`; here it is written in log form
with its analytic gradient, which the search (:mod:`ckpk.pk.fitting`) and the standard
errors (:mod:`ckpk.pk.standard_errors`) use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import expit, log_ndtr

from ckpk.pk.kinetics import SteinParameters, stein_auc

#: How BLQ observations enter the fit: ``censored`` (the M3 likelihood, the default and
#: the rule of docs/rules.md); ``drop``, ``half_lloq`` and ``lloq`` are the classical substitutions,
#: kept only so that their bias can be shown next to the censored fit.
BLQ_HANDLING = ("censored", "drop", "half_lloq", "lloq")

_LOG_2PI = math.log(2.0 * math.pi)
IDX_FULL = np.arange(7)
IDX_REDUCED = np.array([0, 1, 2, 3, 6])
# Transformed-parameter names, in the order of the internal vector.
THETA_NAMES = (
    "log_cmax",
    "log_tmax",
    "log_foldx_m1",
    "log_alpha",
    "logit_beta_ratio",
    "logit_fb",
    "log_sigma",
)


@dataclass(frozen=True)
class ProfileData:
    """One profile as the likelihood sees it (log scale)."""

    t_q: np.ndarray  # days of quantifiable observations
    y_q: np.ndarray  # their log values
    t_c: np.ndarray  # days of censored (BLQ) observations
    y_c: np.ndarray  # log LLOQ of each censored observation

    @property
    def n(self) -> int:
        return int(self.t_q.size + self.t_c.size)

    @cached_property
    def t_all(self) -> np.ndarray:
        """Quantifiable then censored days, so the curve is evaluated once per call."""
        return np.concatenate([self.t_q, self.t_c])

    def in_day_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All observations in day order with BLQ placed at their LLOQ, and the BLQ mask."""
        t = np.concatenate([self.t_q, self.t_c])
        y = np.concatenate([self.y_q, self.y_c])
        is_blq = np.concatenate([np.zeros(self.t_q.size, bool), np.ones(self.t_c.size, bool)])
        order = np.argsort(t, kind="stable")
        return t[order], y[order], is_blq[order]


def prepare_observations(
    day: np.ndarray, value: np.ndarray, blq: np.ndarray, lloq: np.ndarray, blq_handling: str
) -> tuple[ProfileData, ProfileData, list[str]]:
    """Classify observations; return (censored view, view for the fit, flags)."""
    flags: list[str] = []
    keep = np.isfinite(day) & (day >= 0)
    day, value, blq, lloq = day[keep], value[keep], blq[keep], lloq[keep]
    # A reading of 0 or less that is not marked BLQ can only mean "not detected".
    nonpositive = ~blq & np.isfinite(value) & (value <= 0)
    if nonpositive.any():
        flags.append(f"{int(nonpositive.sum())} reading(s) <= 0 not marked BLQ taken as BLQ")
    is_blq = blq | nonpositive
    infinite = ~is_blq & np.isinf(value)
    if infinite.any():
        # As NCA does: an infinite reading is no measurement, and the fit says so.
        days = ", ".join(f"{d:g}" for d in day[infinite])
        flags.append(f"day {days}: infinite value ignored")
    quant = ~is_blq & np.isfinite(value)
    has_lloq = np.isfinite(lloq) & (lloq > 0)
    censored = is_blq & has_lloq
    no_lloq = is_blq & ~has_lloq
    if no_lloq.any():
        flags.append(f"{int(no_lloq.sum())} BLQ observation(s) without an LLOQ left out")
    as_censored = ProfileData(
        day[quant], np.log(value[quant]), day[censored], np.log(lloq[censored])
    )
    if blq_handling == "censored":
        used = as_censored
    elif blq_handling == "drop":
        used = ProfileData(as_censored.t_q, as_censored.y_q, np.empty(0), np.empty(0))
    else:
        shift = math.log(0.5) if blq_handling == "half_lloq" else 0.0
        t_all = np.concatenate([as_censored.t_q, as_censored.t_c])
        y_all = np.concatenate([as_censored.y_q, as_censored.y_c + shift])
        order = np.argsort(t_all, kind="stable")
        used = ProfileData(t_all[order], y_all[order], np.empty(0), np.empty(0))
    return as_censored, used, flags


def log_curve(theta: np.ndarray, t: np.ndarray, full: bool) -> tuple[np.ndarray, np.ndarray]:
    """log C(t) and its gradient (n × 7) with respect to the transformed parameters.

    Both branches are evaluated on every day and combined with masks (cheaper than fancy
    indexing for ~15 samples); the falling branch is exactly 0 in log and gradient at
    delta = 0, so only the rising part and the Tmax derivative need the masks.
    """
    a, b, c, d, e, f = theta[:6]
    tmax = math.exp(b)
    lf = float(np.logaddexp(0.0, c))  # log(foldx) = log(1 + e^c)
    dlf_dc = float(expit(c))
    alpha = math.exp(d)
    rising = (t < tmax).astype(float)
    u = rising * (t / tmax - 1.0)  # 0 on the falling branch
    delta = np.maximum(t - tmax, 0.0)
    grad = np.zeros((t.size, 7))
    grad[:, 0] = 1.0
    grad[:, 2] = dlf_dc * u
    if full:
        q = float(expit(e))
        beta = alpha * q
        fb = float(expit(f))
        l1 = math.log1p(-fb) - alpha * delta
        l2 = math.log(fb) - beta * delta
        log_s = np.logaddexp(l1, l2)
        w1 = np.exp(l1 - log_s)
        w2 = np.exp(l2 - log_s)
        rate = alpha * w1 + beta * w2
        grad[:, 4] = -delta * beta * (1.0 - q) * w2
        grad[:, 5] = (1.0 - fb) * w2 - fb * w1
    else:
        log_s = -alpha * delta
        rate = alpha
    out = a + lf * u + log_s
    grad[:, 1] = rising * (-lf * t / tmax) + (1.0 - rising) * rate * tmax
    grad[:, 3] = -delta * rate
    return out, grad


def neg_log_likelihood(
    theta: np.ndarray, data: ProfileData, full: bool
) -> tuple[float, np.ndarray]:
    """Negative log-likelihood (log scale, BLQ censored) and its gradient (length 7)."""
    sigma = math.exp(theta[6])
    total = 0.0
    grad = np.zeros(7)
    n_q = data.t_q.size
    level_all, dlevel_all = log_curve(theta, data.t_all, full)
    if n_q:
        level, dlevel = level_all[:n_q], dlevel_all[:n_q]
        r = (data.y_q - level) / sigma
        total += float(np.sum(0.5 * _LOG_2PI + theta[6] + 0.5 * r * r))
        grad += (-r / sigma) @ dlevel
        grad[6] += float(np.sum(1.0 - r * r))
    if data.t_c.size:
        level, dlevel = level_all[n_q:], dlevel_all[n_q:]
        z = (data.y_c - level) / sigma
        log_cdf = log_ndtr(z)
        total -= float(np.sum(log_cdf))
        # Inverse Mills ratio φ(z)/Φ(z), computed in logs so that it stays finite for z ≪ 0.
        mills = np.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_cdf)
        grad += (mills / sigma) @ dlevel
        grad[6] += float(np.sum(mills * z))
    return total, grad


def to_parameters(theta: np.ndarray, full: bool) -> SteinParameters:
    alpha = math.exp(theta[3])
    return SteinParameters(
        cmax=math.exp(theta[0]),
        tmax=math.exp(theta[1]),
        foldx=1.0 + math.exp(theta[2]),
        alpha=alpha,
        # The reduced model has no persistence phase; beta = alpha makes the unused
        # second exponential harmless for the shared curve and AUC functions.
        beta=alpha * float(expit(theta[4])) if full else alpha,
        fb=float(expit(theta[5])) if full else 0.0,
    )


def estimates(theta: np.ndarray, full: bool, end: float) -> np.ndarray:
    """The estimates with a standard error, in the order of ``parameters.MODEL_ESTIMATES``."""
    p = to_parameters(theta, full)
    return np.array([p.cmax, p.tmax, p.foldx, p.rho, p.alpha, p.beta, p.fb, stein_auc(p, 0.0, end)])
