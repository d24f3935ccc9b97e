"""Fit of the Stein 2019 expansion / contraction / persistence model.

The rule is in docs/rules.md, "Kinetic model".

Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol.
2019;8:285-295. The curve itself lives in :mod:`ckpk.pk.kinetics` (shared with the
simulator); this module estimates its parameters for one subject × analyte at a time.

Statistical model (per profile)
-------------------------------
* Log scale: ``log y_i = log C(t_i; θ) + ε_i``, ``ε_i ~ N(0, σ²)`` (a log-normal,
  i.e. proportional, residual error as in the paper). σ is estimated.
* BLQ samples are left-censored observations (Beal's M3 method): each adds
  ``log Φ((log LLOQ_i − log C(t_i)) / σ)``, the probability of reading below its LLOQ,
  to the log-likelihood. They are neither zeros nor dropped.
* Screening samples (day < 0) are left out; day 0 (the infusion) is kept, where the
  model level is ``Cmax / foldx``.
* Parameters are estimated on an unbounded-ish transformed scale, inside box bounds:
  ``log Cmax, log Tmax, log(foldx − 1), log α, logit(β/α), logit Fb, log σ``.
  Writing β as a fraction (at most one half) of α removes the label switching between
  the two exponentials and keeps the persistence phase the slower one.
* Deterministic multi-start (no random numbers): starts from the data (observed peak
  and its day, the rise before it, the slope after it) and from the published typical
  shape (Tmax 9.3 d, foldx 3900, α 0.16/d, β 0.0032/d, Fb 0.0079) scaled to the observed
  peak, each polished by a bounded truncated-Newton search (scipy TNC) with the
  analytic gradient. (L-BFGS-B gave the same optima but scipy's implementation calls
  multi-threaded BLAS on 7 × 7 problems and ran 10-15 times slower on a busy machine.)

Model choice (the persistence phase is often not identifiable)
---------------------------------------------------------------
Two nested models are fitted: the *full* model (6 curve parameters + σ) and a *reduced*
model with ``Fb = 0`` (mono-exponential contraction; 4 curve parameters + σ). The one
with the smaller AIC is reported (``model`` column; a tie keeps the reduced one). When
the reduced model wins, ``fb`` is 0 and ``beta``/``persistence_half_life`` are empty:
the data (short follow-up, or a tail below the LLOQ) do not support a second phase.
The full model is only tried with at least 8 observations (more than its 7 parameters).

Uncertainty
-----------
Standard errors (``*_se``) come from the observed information: the Hessian of the
negative log-likelihood on the transformed scale (central differences of the analytic
gradient), inverted, then carried to each reported quantity by the delta method
(numerical gradient of the quantity with respect to the transformed parameters).
The covariance is scaled by n/(n − k) (n observations, k parameters including σ), the
degrees-of-freedom correction of R's ``nls``, because the ML σ is biased low in profiles
of ~14 samples. Parameters sitting on a bound are held fixed (no variance) and flagged.
An approximate 95 % interval for a positive quantity x is ``x · exp(±1.96 · x_se / x)``.

The curve has a kink at Tmax, so the likelihood has a corner wherever Tmax equals a
sampling day, and the maximum often sits on one (a high observed peak). Such a fit is
finished with Tmax held on that day, accepted when moving Tmax either way lowers the
likelihood, flagged, and reported without ``tmax_se`` (a corner has no curvature).

Identifiability rules (``converged`` false, a reason in ``flags``, never an exception)
-------------------------------------------------------------------------------------
no quantifiable observation (non-responder); fewer than :data:`MIN_QUANTIFIABLE`
quantifiable observations; fewer observations than reduced-model parameters; no rise
before the observed peak; no decline after it (this covers flat profiles). A search that
ends neither at a stationary point nor at an accepted corner is ``converged`` false
with the optimiser's message.

Quality flags (``converged`` stays true; the flags tell the analyst what to distrust):
model Cmax above 3 × the highest reading (peak between samples); residual SD above 1
on the log scale (outliers, re-expansion or another shape the model cannot follow);
any reported estimate whose SE exceeds 50 % of it; estimates on a bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_ndtr, logit

from ckpk.pk.concentrations import ANALYTE_UNITS, validate_concentrations
from ckpk.pk.kinetics import TYPICAL, SteinParameters, stein_auc

#: Fewest quantifiable (non-BLQ) observations a profile needs to be fitted.
MIN_QUANTIFIABLE = 4
#: Fewest observations (quantifiable + BLQ) for the full, two-phase model (7 parameters).
FULL_MODEL_MIN_OBS = 8
#: Bounds of the residual SD on the log scale. The floor stops a model that passes
#: through every point from claiming infinite likelihood (σ → 0); 0.05 ≈ 5 % CV, below any
#: qPCR or flow assay's repeatability.
SIGMA_BOUNDS = (0.05, 5.0)
#: Quality flags on converged fits (they do not change ``converged``): model Cmax more
#: than this multiple of the highest reading, residual SD above this on the log scale,
#: and standard errors above this fraction of their estimate.
MAX_CMAX_RATIO = 3.0
POOR_FIT_SIGMA = 1.0
MAX_RELATIVE_SE = 0.5
#: How BLQ observations enter the fit: ``censored`` (the M3 likelihood, the default and
#: the rule of docs/rules.md); ``drop``, ``half_lloq`` and ``lloq`` are the classical substitutions,
#: kept only so that their bias can be shown next to the censored fit.
BLQ_HANDLING = ("censored", "drop", "half_lloq", "lloq")

_LOG_2PI = math.log(2.0 * math.pi)
_IDX_FULL = np.arange(7)
_IDX_REDUCED = np.array([0, 1, 2, 3, 6])
# Transformed-parameter names, in the order of the internal vector.
_THETA_NAMES = (
    "log_cmax",
    "log_tmax",
    "log_foldx_m1",
    "log_alpha",
    "logit_beta_ratio",
    "logit_fb",
    "log_sigma",
)
_BETA_RATIO_MAX = 0.5
_TNC_OPTIONS = {"maxfun": 2000, "ftol": 1e-12, "gtol": 1e-8}
_FB_MAX = 0.9

MODEL_FIT_COLUMNS = [
    # config/README.md pk/model_fits.tsv, in this order
    "subject_id",
    "analyte",
    "converged",
    "cmax",
    "tmax",
    "rho",
    "doubling_time",
    "alpha",
    "beta",
    "fb",
    "auc_0_28",
    "aic",
    "flags",
    # more for the PK analyst
    "foldx",
    "sigma",
    "contraction_half_life",
    "persistence_half_life",
    "n_obs",
    "n_blq",
    "model",
    "cmax_se",
    "tmax_se",
    "foldx_se",
    "rho_se",
    "alpha_se",
    "beta_se",
    "fb_se",
    "auc_0_28_se",
    "unit",
]

MODEL_COLUMN_DOC: dict[str, str] = {
    "subject_id": "subject",
    "analyte": "car_per_ul, car_pct_cd3, car_copies_per_ug, ...",
    "converged": "true when the fit reached a likelihood maximum; false with a reason in flags",
    "cmax": "model peak level (analyte unit)",
    "tmax": "model day of the peak (days after infusion)",
    "rho": "expansion rate constant ln(foldx)/Tmax (1/day)",
    "doubling_time": "expansion doubling time ln2/rho (days)",
    "alpha": "contraction rate constant (1/day)",
    "beta": "persistence rate constant (1/day); empty for the reduced model (fb = 0)",
    "fb": "fraction of Cmax in the persistence phase (0-1); 0 for the reduced model",
    "auc_0_28": "model AUC over [0, end] days (default end 28; unit x day), exact integral",
    "aic": "Akaike information criterion 2*NLL + 2k of the reported model (log-scale "
    "likelihood, k counts sigma)",
    "flags": "reasons and warnings, separated by '; '",
    "foldx": "fold expansion from day 0 (Cmax/foldx) to the peak",
    "sigma": "residual SD on the natural-log scale (about the CV of a reading), corrected "
    "for degrees of freedom: sigma_ML * sqrt(n / (n - k))",
    "contraction_half_life": "ln2/alpha (days)",
    "persistence_half_life": "ln2/beta (days); empty for the reduced model",
    "n_obs": "observations used: quantifiable + BLQ (censored), day >= 0",
    "n_blq": "BLQ observations among n_obs",
    "model": "full (two-phase decline) or reduced (fb = 0, one-phase decline), chosen by AIC",
    "cmax_se": "standard error of cmax (observed information, delta method)",
    "tmax_se": "standard error of tmax",
    "foldx_se": "standard error of foldx",
    "rho_se": "standard error of rho",
    "alpha_se": "standard error of alpha",
    "beta_se": "standard error of beta (empty for the reduced model)",
    "fb_se": "standard error of fb (empty for the reduced model)",
    "auc_0_28_se": "standard error of auc_0_28",
    "unit": "unit of the analyte (cmax; auc_0_28 is unit x day)",
}

_ESTIMATES = ("cmax", "tmax", "foldx", "rho", "alpha", "beta", "fb", "auc_0_28")


@dataclass(frozen=True)
class _Data:
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


# --------------------------------------------------------------------------- model


def _log_curve(theta: np.ndarray, t: np.ndarray, full: bool) -> tuple[np.ndarray, np.ndarray]:
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


def _nll(theta: np.ndarray, data: _Data, full: bool) -> tuple[float, np.ndarray]:
    """Negative log-likelihood (log scale, BLQ censored) and its gradient (length 7)."""
    sigma = math.exp(theta[6])
    total = 0.0
    grad = np.zeros(7)
    n_q = data.t_q.size
    level_all, dlevel_all = _log_curve(theta, data.t_all, full)
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


def _to_parameters(theta: np.ndarray, full: bool) -> SteinParameters:
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


def _estimates(theta: np.ndarray, full: bool, end: float) -> np.ndarray:
    p = _to_parameters(theta, full)
    return np.array([p.cmax, p.tmax, p.foldx, p.rho, p.alpha, p.beta, p.fb, stein_auc(p, 0.0, end)])


# --------------------------------------------------------------------------- data


def _levels_for_checks(data: _Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All observations in day order with BLQ placed at their LLOQ, and the BLQ mask."""
    t = np.concatenate([data.t_q, data.t_c])
    y = np.concatenate([data.y_q, data.y_c])
    is_blq = np.concatenate([np.zeros(data.t_q.size, bool), np.ones(data.t_c.size, bool)])
    order = np.argsort(t, kind="stable")
    return t[order], y[order], is_blq[order]


def _identifiability(data: _Data) -> list[str]:
    """Reasons why this profile cannot be fitted (empty when it can)."""
    n_q = data.t_q.size
    if data.n == 0:
        return ["no observation on or after day 0"]
    if n_q == 0:
        return [f"no quantifiable observation (all {data.t_c.size} BLQ): non-responder"]
    reasons = []
    if n_q < MIN_QUANTIFIABLE:
        reasons.append(
            f"too few quantifiable observations ({n_q} < {MIN_QUANTIFIABLE}) to fit the model"
        )
    elif data.n < _IDX_REDUCED.size:
        reasons.append(f"too few observations ({data.n}) for {_IDX_REDUCED.size} parameters")
    peak = float(np.max(data.y_q))
    t_peak = float(data.t_q[np.argmax(data.y_q)])  # first day of the maximum
    t, y, _ = _levels_for_checks(data)
    if not np.any((t < t_peak) & (y < peak)):
        reasons.append("no rise observed before the peak (expansion not identifiable)")
    if not np.any((t > t_peak) & (y < peak)):
        reasons.append("no decline observed after the peak (contraction not identifiable)")
    return reasons


def _prepare(
    day: np.ndarray, value: np.ndarray, blq: np.ndarray, lloq: np.ndarray, blq_handling: str
) -> tuple[_Data, _Data, list[str]]:
    """Classify observations; return (censored view, view for the fit, flags)."""
    flags: list[str] = []
    keep = np.isfinite(day) & (day >= 0)
    day, value, blq, lloq = day[keep], value[keep], blq[keep], lloq[keep]
    # A reading of 0 or less that is not marked BLQ can only mean "not detected".
    nonpositive = ~blq & np.isfinite(value) & (value <= 0)
    if nonpositive.any():
        flags.append(f"{int(nonpositive.sum())} reading(s) <= 0 not marked BLQ taken as BLQ")
    is_blq = blq | nonpositive
    quant = ~is_blq & np.isfinite(value)
    has_lloq = np.isfinite(lloq) & (lloq > 0)
    censored = is_blq & has_lloq
    no_lloq = is_blq & ~has_lloq
    if no_lloq.any():
        flags.append(f"{int(no_lloq.sum())} BLQ observation(s) without an LLOQ left out")
    as_censored = _Data(day[quant], np.log(value[quant]), day[censored], np.log(lloq[censored]))
    if blq_handling == "censored":
        used = as_censored
    elif blq_handling == "drop":
        used = _Data(as_censored.t_q, as_censored.y_q, np.empty(0), np.empty(0))
    else:
        shift = math.log(0.5) if blq_handling == "half_lloq" else 0.0
        t_all = np.concatenate([as_censored.t_q, as_censored.t_c])
        y_all = np.concatenate([as_censored.y_q, as_censored.y_c + shift])
        order = np.argsort(t_all, kind="stable")
        used = _Data(t_all[order], y_all[order], np.empty(0), np.empty(0))
    return as_censored, used, flags


# --------------------------------------------------------------------------- fitting


def _bounds(data: _Data) -> np.ndarray:
    peak = float(np.max(data.y_q))
    t_last = float(max(np.max(data.t_q), np.max(data.t_c, initial=0.0)))
    return np.array(
        [
            (peak - math.log(100.0), peak + math.log(100.0)),  # Cmax within 100-fold of peak
            (math.log(0.05), math.log(max(t_last, 0.1))),  # Tmax inside follow-up
            (math.log(0.01), math.log(1e8)),  # foldx 1.01 .. 1e8
            (math.log(1e-4), math.log(20.0)),  # alpha
            (-15.0, float(logit(_BETA_RATIO_MAX))),  # beta/alpha 3e-7 .. 0.5
            (-15.0, float(logit(_FB_MAX))),  # Fb 3e-7 .. 0.9
            (math.log(SIGMA_BOUNDS[0]), math.log(SIGMA_BOUNDS[1])),
        ]
    )


def _starts(data: _Data, bounds: np.ndarray) -> list[np.ndarray]:
    """Deterministic starting points: from the data and from the published typical shape."""
    t, y, is_blq = _levels_for_checks(data)
    i_peak = int(np.argmax(data.y_q))
    peak, t_peak = float(data.y_q[i_peak]), float(data.t_q[i_peak])
    # Expansion from the first observation before the peak (BLQ taken at LLOQ/2).
    before = np.flatnonzero(t < t_peak)
    if before.size:
        j = int(before[0])
        y0 = float(y[j]) + (math.log(0.5) if is_blq[j] else 0.0)
        rho = max((peak - y0) / max(t_peak - float(t[j]), 1e-3), 0.05)
        foldx_data = min(max(math.exp(rho * t_peak), 2.0), 1e6)
    else:
        foldx_data = TYPICAL.foldx
    # Contraction from the log-linear slope over the next observations after the peak.
    after = (t > t_peak) & (t <= t_peak + 30.0)
    if np.count_nonzero(after) >= 1:
        ta = np.concatenate([[t_peak], t[after]])
        ya = np.concatenate([[peak], y[after]])
        slope = np.polyfit(ta, ya, 1)[0] if ta.size > 2 else (ya[1] - ya[0]) / (ta[1] - ta[0])
        alpha_data = min(max(-float(slope), 0.02), 5.0)
    else:
        alpha_data = TYPICAL.alpha
    # Persistence fraction: what the last quantifiable level says with the typical beta.
    i_last = int(np.argmax(data.t_q))
    fb_data = math.exp(float(data.y_q[i_last]) - peak) * math.exp(
        TYPICAL.beta * (float(data.t_q[i_last]) - t_peak)
    )
    fb_data = min(max(fb_data, 1e-4), 0.5)
    # Between the observed peak and its higher neighbour lies the likely true Tmax.
    neighbours = [
        (y[j], t[j])
        for j in (np.flatnonzero(t == t_peak)[0] + k for k in (-1, 1))
        if 0 <= j < t.size
    ]
    t_mid = 0.5 * (t_peak + max(neighbours)[1]) if neighbours else t_peak

    typ_ratio = TYPICAL.beta / TYPICAL.alpha
    shapes = [
        # (log cmax, tmax, foldx, alpha, beta/alpha, fb)
        (peak, t_peak, foldx_data, alpha_data, typ_ratio, fb_data),
        (peak, t_peak, TYPICAL.foldx, TYPICAL.alpha, typ_ratio, TYPICAL.fb),
        (peak, TYPICAL.tmax, TYPICAL.foldx, TYPICAL.alpha, typ_ratio, TYPICAL.fb),
        (peak + math.log(1.3), t_mid, foldx_data, alpha_data, typ_ratio, fb_data),
    ]
    starts = []
    for log_c, tmax, foldx, alpha, ratio, fb in shapes:
        theta = np.array(
            [
                log_c,
                math.log(max(tmax, 0.05)),
                math.log(foldx - 1.0),
                math.log(alpha),
                float(logit(ratio)),
                float(logit(fb)),
                math.log(0.3),
            ]
        )
        theta = np.clip(theta, bounds[:, 0] + 1e-6, bounds[:, 1] - 1e-6)
        if not any(np.allclose(theta, s) for s in starts):
            starts.append(theta)
    return starts


@dataclass
class _Fit:
    theta: np.ndarray  # length 7 (unused entries of the reduced model are placeholders)
    nll: float
    full: bool
    success: bool
    message: str
    at_bound: list[str]
    corner: bool = False  # Tmax sits exactly on a sampling day (see _fit_model)

    @property
    def k(self) -> int:
        return int((_IDX_FULL if self.full else _IDX_REDUCED).size)

    @property
    def aic(self) -> float:
        return 2.0 * self.nll + 2.0 * self.k


def _search(
    data: _Data, full: bool, bounds: np.ndarray, starts: list[np.ndarray], idx: np.ndarray
) -> tuple[np.ndarray, float, bool, str]:
    """Best bounded TNC search over the parameters ``idx`` (others held at starts[0])."""
    template = starts[0].copy()

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = template.copy()
        theta[idx] = x
        value, grad = _nll(theta, data, full)
        if not math.isfinite(value):
            return 1e300, np.zeros(idx.size)
        return value, grad[idx]

    best = None
    # The last search restarts from the best point so far, which often finishes a search
    # that stalled on the kink of the curve at Tmax.
    for start in [*starts, None]:
        x0 = best.x if start is None else start[idx]
        res = minimize(
            objective, x0, jac=True, method="TNC", bounds=bounds[idx], options=_TNC_OPTIONS
        )
        if best is None or res.fun < best.fun - 1e-12:
            best = res
    theta = template.copy()
    theta[idx] = best.x
    return theta, float(best.fun), bool(best.success), str(best.message)


def _fit_model(data: _Data, full: bool, bounds: np.ndarray, starts: list[np.ndarray]) -> _Fit:
    """Maximum-likelihood fit of the full or reduced model, with a convergence verdict.

    At a likelihood corner (Tmax on a sampling day, see the module doc) the gradient in
    Tmax never vanishes, so the fit is finished with Tmax held on that day and accepted
    when moving Tmax either way lowers the likelihood.
    """
    idx = _IDX_FULL if full else _IDX_REDUCED
    theta, nll, success, message = _search(data, full, bounds, starts, idx)
    tmax = math.exp(theta[1])
    days = data.t_all
    nearest = float(days[np.argmin(np.abs(days - tmax))])
    corner = abs(tmax - nearest) <= 1e-6 * max(nearest, 1.0)
    if corner:
        pinned = theta.copy()
        pinned[1] = math.log(nearest)
        theta_c, nll_c, success_c, message_c = _search(data, full, bounds, [pinned], idx[idx != 1])
        if nll_c <= nll + 1e-9:
            theta, nll, success, message = theta_c, nll_c, success_c, message_c
    free = idx[idx != 1] if corner else idx
    grad = _nll(theta, data, full)[1]
    lo, hi = bounds[idx, 0], bounds[idx, 1]
    on_lo = theta[idx] <= lo + 1e-6
    on_hi = theta[idx] >= hi - 1e-6
    at_bound = [_THETA_NAMES[i] for i, a, b in zip(idx, on_lo, on_hi, strict=True) if a or b]
    # Projected gradient: components pushing against an active bound do not count.
    blocked = {i for i, a, b in zip(idx, on_lo, on_hi, strict=True) if a and grad[i] > 0}
    blocked |= {i for i, a, b in zip(idx, on_lo, on_hi, strict=True) if b and grad[i] < 0}
    stationary = all(abs(grad[i]) < 1e-3 for i in free if i not in blocked)
    if corner:
        h = 1e-5
        for step in (h, -h):
            moved = theta.copy()
            moved[1] += step
            stationary &= _nll(moved, data, full)[0] >= nll - 1e-9
    return _Fit(theta, nll, full, success or stationary, message, at_bound, corner)


def _standard_errors(fit: _Fit, data: _Data, end: float) -> tuple[np.ndarray, str | None]:
    """Delta-method SEs of :data:`_ESTIMATES` from the observed information."""
    idx = _IDX_FULL if fit.full else _IDX_REDUCED
    free = np.array(
        [_THETA_NAMES[i] not in fit.at_bound and not (fit.corner and i == 1) for i in idx]
    )
    idx = idx[free]
    h = 1e-5
    hess = np.empty((idx.size, idx.size))
    for col, i in enumerate(idx):
        up, down = fit.theta.copy(), fit.theta.copy()
        up[i] += h
        down[i] -= h
        hess[:, col] = (_nll(up, data, fit.full)[1][idx] - _nll(down, data, fit.full)[1][idx]) / (
            2 * h
        )
    hess = 0.5 * (hess + hess.T)
    nan = np.full(len(_ESTIMATES), np.nan)
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
    jac = np.empty((len(_ESTIMATES), idx.size))
    for col, i in enumerate(idx):
        step = 1e-6 * max(1.0, abs(fit.theta[i]))
        up, down = fit.theta.copy(), fit.theta.copy()
        up[i] += step
        down[i] -= step
        jac[:, col] = (_estimates(up, fit.full, end) - _estimates(down, fit.full, end)) / (2 * step)
    var = np.einsum("ij,jk,ik->i", jac, cov, jac)
    return np.sqrt(np.maximum(var, 0.0)), None


def _empty_result(flags: list[str], n_obs: int, n_blq: int) -> dict[str, object]:
    result: dict[str, object] = {
        name: np.nan for name in MODEL_FIT_COLUMNS if name not in ("subject_id", "analyte", "unit")
    }
    result.update(converged=False, flags="; ".join(flags), n_obs=n_obs, n_blq=n_blq, model="")
    return result


def fit_profile(
    day: Sequence[float] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    blq: Sequence[bool] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None = None,
    *,
    end: float = 28.0,
    blq_handling: str = "censored",
    reduced: str = "aic",
) -> dict[str, object]:
    """Fit the Stein 2019 model to one subject × analyte profile.

    ``day``, ``value``, ``blq`` (and ``lloq``, a scalar or one value per observation)
    describe the samples; on a BLQ row ``value`` is ignored (empty, 0 or a reading below
    the LLOQ all mean the same). ``blq_handling`` is one of :data:`BLQ_HANDLING`
    (``censored`` is the rule of docs/rules.md; the others exist to show their bias). ``reduced``:
    ``"aic"`` picks the full or reduced (fb = 0) model by AIC, ``"never"`` forces the full
    model, ``"always"`` the reduced one.

    Returns a dict with the keys of :data:`MODEL_FIT_COLUMNS` except subject_id,
    analyte and unit. Never raises on bad data: ``converged`` is false and ``flags``
    says why.
    """
    if blq_handling not in BLQ_HANDLING:
        raise ValueError(f"blq_handling must be one of {BLQ_HANDLING}, not {blq_handling!r}")
    if reduced not in ("aic", "never", "always"):
        raise ValueError(f"reduced must be 'aic', 'never' or 'always', not {reduced!r}")
    day_a = np.asarray(day, dtype=float)
    value_a = np.asarray(
        pd.to_numeric(pd.Series(np.asarray(value, dtype=object)), errors="coerce"), dtype=float
    )
    blq_a = np.asarray(blq, dtype=bool)
    if lloq is None:
        lloq_a = np.full(day_a.size, np.nan)
    else:
        lloq_a = np.broadcast_to(np.asarray(lloq, dtype=float), day_a.shape).copy()
    if not (day_a.size == value_a.size == blq_a.size == lloq_a.size):
        return _empty_result(["day, value, blq and lloq differ in length"], 0, 0)

    censored_view, data, flags = _prepare(day_a, value_a, blq_a, lloq_a, blq_handling)
    n_obs, n_blq = censored_view.n, int(censored_view.t_c.size)
    reasons = _identifiability(censored_view)
    if reasons:
        return _empty_result(reasons + flags, n_obs, n_blq)

    bounds = _bounds(data)
    starts = _starts(data, bounds)
    fits = []
    if reduced != "never":
        fits.append(_fit_model(data, False, bounds, starts))
    if reduced != "always":
        if data.n >= FULL_MODEL_MIN_OBS:
            fits.append(_fit_model(data, True, bounds, starts))
        else:
            flags.append(
                f"full model not tried: {data.n} observations < {FULL_MODEL_MIN_OBS}; "
                "reduced model (fb = 0)"
            )
    if not fits:
        fits.append(_fit_model(data, False, bounds, starts))
    # Reduced first, so that a tie (within 1e-6) keeps the simpler model.
    fit = min(fits, key=lambda f: (round(f.aic, 6), f.k))
    if len(fits) == 2 and not fit.full:
        other = fits[1]
        flags.append(
            f"reduced model (fb = 0) chosen by AIC ({fit.aic:.2f} vs full {other.aic:.2f})"
        )

    p = _to_parameters(fit.theta, fit.full)
    sigma = math.exp(fit.theta[6])
    if data.n > fit.k:
        # Reported like R's nls "residual standard error": the ML estimate divides by n,
        # this by the n - k degrees of freedom left after k parameters.
        sigma *= math.sqrt(data.n / (data.n - fit.k))
    if not fit.success:
        flags.append(f"optimizer did not converge: {fit.message}")
    if fit.at_bound:
        flags.append("estimate at its bound: " + ", ".join(_bound_text(fit, data)))
    if fit.corner:
        flags.append(
            f"Tmax falls on the sampling day {p.tmax:g} (likelihood corner): no tmax_se, "
            "other SEs treat Tmax as known"
        )
    se, se_flag = _standard_errors(fit, data, end)
    if se_flag:
        flags.append(se_flag)
    flags.extend(_quality_flags(p, sigma, fit, censored_view, se, end))
    result: dict[str, object] = {
        "converged": fit.success,
        "cmax": p.cmax,
        "tmax": p.tmax,
        "rho": p.rho,
        "doubling_time": p.doubling_time,
        "alpha": p.alpha,
        "beta": p.beta if fit.full else np.nan,
        "fb": p.fb,
        "auc_0_28": stein_auc(p, 0.0, end),
        "aic": fit.aic,
        "flags": "; ".join(flags),
        "foldx": p.foldx,
        "sigma": sigma,
        "contraction_half_life": p.contraction_half_life,
        "persistence_half_life": p.persistence_half_life if fit.full else np.nan,
        "n_obs": n_obs,
        "n_blq": n_blq,
        "model": "full" if fit.full else "reduced",
    }
    for name, value_se in zip(_ESTIMATES, se, strict=True):
        fixed = not fit.full and name in ("beta", "fb")
        fixed |= fit.corner and name == "tmax"
        result[f"{name}_se"] = np.nan if fixed else float(value_se)
    return result


def _bound_text(fit: _Fit, data: _Data) -> list[str]:
    """'sigma at its lower bound 0.05'-style descriptions of the parameters on a bound."""
    bounds = _bounds(data)
    texts = []
    for name in fit.at_bound:
        i = _THETA_NAMES.index(name)
        side = 0 if abs(fit.theta[i] - bounds[i, 0]) <= abs(fit.theta[i] - bounds[i, 1]) else 1
        limit = float(bounds[i, side])
        label, value = _READABLE_BOUNDS[name](limit)
        texts.append(f"{label} at its {('lower', 'upper')[side]} bound {value:.3g}")
    return texts


# Transformed parameter -> (reported name, value of the bound on the reported scale).
_READABLE_BOUNDS = {
    "log_cmax": lambda x: ("cmax", math.exp(x)),
    "log_tmax": lambda x: ("tmax", math.exp(x)),
    "log_foldx_m1": lambda x: ("foldx", 1.0 + math.exp(x)),
    "log_alpha": lambda x: ("alpha", math.exp(x)),
    "logit_beta_ratio": lambda x: ("beta/alpha", float(expit(x))),
    "logit_fb": lambda x: ("fb", float(expit(x))),
    "log_sigma": lambda x: ("sigma", math.exp(x)),
}


def _quality_flags(
    p: SteinParameters, sigma: float, fit: _Fit, data: _Data, se: np.ndarray, end: float
) -> list[str]:
    """Warnings a PK analyst needs before trusting a converged fit."""
    flags = []
    observed_peak = math.exp(float(np.max(data.y_q)))
    if p.cmax > MAX_CMAX_RATIO * observed_peak:
        flags.append(
            f"model Cmax is {p.cmax / observed_peak:.1f} x the highest reading: the peak "
            "falls between samples and is poorly determined"
        )
    if sigma > POOR_FIT_SIGMA:
        flags.append(
            f"poor fit: residual SD {sigma:.2f} on the log scale (> {POOR_FIT_SIGMA:g}); "
            "check for outliers or a profile the model cannot describe (e.g. re-expansion)"
        )
    estimates = _estimates(fit.theta, fit.full, end)
    vague = [
        name
        for name, value, value_se in zip(_ESTIMATES, estimates, se, strict=True)
        if (fit.full or name not in ("beta", "fb"))
        and math.isfinite(value_se)
        and value_se > MAX_RELATIVE_SE * abs(value)
    ]
    if vague:
        flags.append(
            f"poorly determined (SE > {MAX_RELATIVE_SE:.0%} of the estimate): " + ", ".join(vague)
        )
    return flags


def parameters_from_row(row: Mapping[str, object] | pd.Series) -> SteinParameters | None:
    """The fitted curve of one ``model_fits`` row, or None when it has no usable fit."""
    try:
        if not _truthy(row.get("converged")):
            return None
        values = {k: float(row.get(k)) for k in ("cmax", "tmax", "foldx", "alpha", "fb")}
        beta = float(row.get("beta")) if row.get("beta") is not None else math.nan
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in values.values()):
        return None
    if not math.isfinite(beta):
        if values["fb"] != 0:
            return None
        beta = values["alpha"]
    return SteinParameters(beta=beta, **values)


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def fit_table(
    concentrations: pd.DataFrame,
    lloq: Mapping[str, float] | None = None,
    end: float = 28.0,
) -> pd.DataFrame:
    """Fit every subject × analyte of a concentrations table (``pk/model_fits.tsv``).

    BLQ rows take their LLOQ from the table's ``lloq`` column, or from ``lloq[analyte]``
    where that cell is empty; a BLQ row with neither is left out with a flag. Returns the
    columns of :data:`MODEL_FIT_COLUMNS`, sorted by subject and analyte. One profile's
    failure never stops the others (``converged`` false with a reason).
    """
    table = validate_concentrations(concentrations)
    lloq = dict(lloq or {})
    rows = []
    for (subject, analyte), group in table.groupby(["subject_id", "analyte"], sort=True):
        group = group.sort_values("day", kind="mergesort")
        row_lloq = group["lloq"].to_numpy(dtype=float).copy()
        default = lloq.get(str(analyte), np.nan)
        row_lloq[~(np.isfinite(row_lloq) & (row_lloq > 0))] = default
        units = group["unit"].dropna().astype(str)
        units = units[units.str.strip() != ""]
        unit = units.iloc[0] if len(units) else ANALYTE_UNITS.get(str(analyte), "")
        try:
            result = fit_profile(group["day"], group["value"], group["blq"], row_lloq, end=end)
        except Exception as exc:  # noqa: BLE001 - one bad profile must not stop the table
            result = _empty_result([f"fit failed: {type(exc).__name__}: {exc}"], len(group), 0)
        rows.append({"subject_id": subject, "analyte": analyte, **result, "unit": unit})
    if not rows:
        return pd.DataFrame(columns=MODEL_FIT_COLUMNS)
    return pd.DataFrame(rows)[MODEL_FIT_COLUMNS].reset_index(drop=True)
