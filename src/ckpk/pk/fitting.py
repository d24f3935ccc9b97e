"""Maximum-likelihood search for the Stein 2019 parameters of one profile.

* Deterministic multi-start (no random numbers): starts from the data (observed peak
  and its day, the rise before it, the slope after it) and from the published typical
  shape (Tmax 9.3 d, foldx 3900, α 0.16/d, β 0.0032/d, Fb 0.0079) scaled to the observed
  peak, each polished by a bounded truncated-Newton search (scipy TNC) with the
  analytic gradient of :func:`ckpk.pk.likelihood.neg_log_likelihood`. (L-BFGS-B gave
  the same optima but scipy's implementation calls multi-threaded BLAS on 7 × 7
  problems and ran 10-15 times slower on a busy machine.)
* Box bounds (:func:`parameter_bounds`) keep every parameter in a physiological range; an
  estimate on a bound is reported (:func:`bound_text`).
* The curve has a kink at Tmax, so the likelihood has a corner wherever Tmax equals a
  sampling day, and the maximum often sits on one (a high observed peak). Such a fit is
  finished with Tmax held on that day and accepted when moving Tmax either way lowers
  the likelihood (:func:`fit_model`).
* Model choice (:func:`choose_model`): the full model and the reduced one (Fb = 0) are
  both fitted and the smaller AICc wins, a tie keeping the reduced one. AICc, Akaike's
  criterion with the small-sample correction 2k(k+1)/(n−k−1) (Hurvich & Tsai 1989,
  Biometrika 76:297; Burnham & Anderson 2002, Model Selection and Multimodel Inference,
  §2.4), because plain AIC favours the 7-parameter model on profiles of 10–15 samples.
  A model is fitted only with n ≥ k + 2 observations (k parameters including σ), so that
  AICc is finite and at least one residual degree of freedom is left beyond σ; the full
  model is tried only with at least :data:`MIN_PERSISTENCE_SAMPLES` quantifiable samples
  in the persistence phase (more than :data:`PERSISTENCE_PHASE_AFTER_PEAK` days after the
  observed peak): without them the data hold no second phase to estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

from ckpk.pk.kinetics import TYPICAL
from ckpk.pk.likelihood import (
    IDX_FULL,
    IDX_REDUCED,
    THETA_NAMES,
    ProfileData,
    neg_log_likelihood,
)

#: Fewest observations (quantifiable + BLQ) for a model of k parameters: k + 2.
MIN_OBS_MARGIN = 2
#: Fewest observations for the full, two-phase model (7 parameters).
FULL_MODEL_MIN_OBS = IDX_FULL.size + MIN_OBS_MARGIN
#: Fewest observations for the reduced model (5 parameters).
REDUCED_MODEL_MIN_OBS = IDX_REDUCED.size + MIN_OBS_MARGIN
#: The persistence phase: quantifiable samples later than this many days after the
#: observed peak. At the published α of 0.16/d a single-phase decline has fallen about
#: 90-fold in 28 days; what is still quantifiable then is what a second phase describes.
PERSISTENCE_PHASE_AFTER_PEAK = 28.0
MIN_PERSISTENCE_SAMPLES = 2
#: Bounds of the residual SD on the log scale. The floor stops a model that passes
#: through every point from claiming infinite likelihood (σ → 0); 0.05 ≈ 5 % CV, below any
#: qPCR or flow assay's repeatability.
SIGMA_BOUNDS = (0.05, 5.0)
_BETA_RATIO_MAX = 0.5
_TNC_OPTIONS = {"maxfun": 2000, "ftol": 1e-12, "gtol": 1e-8}
_FB_MAX = 0.9


@dataclass
class Fit:
    """One fitted model: θ (length 7; unused entries of the reduced model are
    placeholders), its negative log-likelihood and the convergence verdict."""

    theta: np.ndarray
    nll: float
    full: bool
    success: bool
    message: str
    at_bound: list[str]
    corner: bool = False  # Tmax sits exactly on a sampling day (see fit_model)
    n: int = 0  # observations the likelihood used

    @property
    def k(self) -> int:
        return int((IDX_FULL if self.full else IDX_REDUCED).size)

    @property
    def aic(self) -> float:
        return 2.0 * self.nll + 2.0 * self.k

    @property
    def aicc(self) -> float:
        """AIC with the small-sample correction (Hurvich & Tsai 1989); needs n > k + 1."""
        if self.n <= self.k + 1:
            return math.inf
        return self.aic + 2.0 * self.k * (self.k + 1) / (self.n - self.k - 1)


def parameter_bounds(data: ProfileData) -> np.ndarray:
    """Box bounds of θ for this profile (rows in the order of ``THETA_NAMES``)."""
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


def _fold_expansion(
    t: np.ndarray, y: np.ndarray, is_blq: np.ndarray, peak: float, t_peak: float
) -> float:
    """Expansion from the first observation before the peak (BLQ taken at LLOQ/2)."""
    before = np.flatnonzero(t < t_peak)
    if not before.size:
        return TYPICAL.foldx
    j = int(before[0])
    y0 = float(y[j]) + (math.log(0.5) if is_blq[j] else 0.0)
    rho = max((peak - y0) / max(t_peak - float(t[j]), 1e-3), 0.05)
    return min(max(math.exp(rho * t_peak), 2.0), 1e6)


def _contraction_rate(t: np.ndarray, y: np.ndarray, peak: float, t_peak: float) -> float:
    """Contraction from the log-linear slope over the next observations after the peak."""
    after = (t > t_peak) & (t <= t_peak + 30.0)
    if np.count_nonzero(after) < 1:
        return TYPICAL.alpha
    ta = np.concatenate([[t_peak], t[after]])
    ya = np.concatenate([[peak], y[after]])
    slope = np.polyfit(ta, ya, 1)[0] if ta.size > 2 else (ya[1] - ya[0]) / (ta[1] - ta[0])
    return min(max(-float(slope), 0.02), 5.0)


def _persistence_fraction(data: ProfileData, peak: float, t_peak: float) -> float:
    """What the last quantifiable level says of Fb with the typical beta."""
    i_last = int(np.argmax(data.t_q))
    fb_data = math.exp(float(data.y_q[i_last]) - peak) * math.exp(
        TYPICAL.beta * (float(data.t_q[i_last]) - t_peak)
    )
    return min(max(fb_data, 1e-4), 0.5)


def _likely_tmax(t: np.ndarray, y: np.ndarray, t_peak: float) -> float:
    """Between the observed peak and its higher neighbour lies the likely true Tmax."""
    neighbours = [
        (y[j], t[j])
        for j in (np.flatnonzero(t == t_peak)[0] + k for k in (-1, 1))
        if 0 <= j < t.size
    ]
    return 0.5 * (t_peak + max(neighbours)[1]) if neighbours else t_peak


def start_points(data: ProfileData, bounds: np.ndarray) -> list[np.ndarray]:
    """Deterministic starting points: from the data and from the published typical shape."""
    t, y, is_blq = data.in_day_order()
    i_peak = int(np.argmax(data.y_q))
    peak, t_peak = float(data.y_q[i_peak]), float(data.t_q[i_peak])
    foldx_data = _fold_expansion(t, y, is_blq, peak, t_peak)
    alpha_data = _contraction_rate(t, y, peak, t_peak)
    fb_data = _persistence_fraction(data, peak, t_peak)
    t_mid = _likely_tmax(t, y, t_peak)

    typ_ratio = TYPICAL.beta / TYPICAL.alpha
    shapes = [
        # (log cmax, tmax, foldx, alpha, beta/alpha, fb)
        (peak, t_peak, foldx_data, alpha_data, typ_ratio, fb_data),
        (peak, t_peak, TYPICAL.foldx, TYPICAL.alpha, typ_ratio, TYPICAL.fb),
        (peak, TYPICAL.tmax, TYPICAL.foldx, TYPICAL.alpha, typ_ratio, TYPICAL.fb),
        (peak + math.log(1.3), t_mid, foldx_data, alpha_data, typ_ratio, fb_data),
    ]
    found: list[np.ndarray] = []
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
        if not any(np.allclose(theta, s) for s in found):
            found.append(theta)
    return found


def _search(
    data: ProfileData, full: bool, bounds: np.ndarray, starts: list[np.ndarray], idx: np.ndarray
) -> tuple[np.ndarray, float, bool, str]:
    """Best bounded TNC search over the parameters ``idx`` (others held at starts[0])."""
    template = starts[0].copy()

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = template.copy()
        theta[idx] = x
        value, grad = neg_log_likelihood(theta, data, full)
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


def fit_model(data: ProfileData, full: bool, bounds: np.ndarray, starts: list[np.ndarray]) -> Fit:
    """Maximum-likelihood fit of the full or reduced model, with a convergence verdict.

    At a likelihood corner (Tmax on a sampling day, see the module doc) the gradient in
    Tmax never vanishes, so the fit is finished with Tmax held on that day and accepted
    when moving Tmax either way lowers the likelihood.
    """
    idx = IDX_FULL if full else IDX_REDUCED
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
    grad = neg_log_likelihood(theta, data, full)[1]
    lo, hi = bounds[idx, 0], bounds[idx, 1]
    on_lo = theta[idx] <= lo + 1e-6
    on_hi = theta[idx] >= hi - 1e-6
    at_bound = [THETA_NAMES[i] for i, a, b in zip(idx, on_lo, on_hi, strict=True) if a or b]
    # Projected gradient: components pushing against an active bound do not count.
    blocked = {i for i, a, b in zip(idx, on_lo, on_hi, strict=True) if a and grad[i] > 0}
    blocked |= {i for i, a, b in zip(idx, on_lo, on_hi, strict=True) if b and grad[i] < 0}
    stationary = all(abs(grad[i]) < 1e-3 for i in free if i not in blocked)
    if corner:
        h = 1e-5
        for step in (h, -h):
            moved = theta.copy()
            moved[1] += step
            stationary &= neg_log_likelihood(moved, data, full)[0] >= nll - 1e-9
    return Fit(theta, nll, full, success or stationary, message, at_bound, corner, data.n)


def persistence_samples(data: ProfileData) -> int:
    """Quantifiable samples in the persistence phase (see the module doc)."""
    t_peak = float(data.t_q[np.argmax(data.y_q)])
    return int(np.count_nonzero(data.t_q > t_peak + PERSISTENCE_PHASE_AFTER_PEAK))


def _why_not_full(data: ProfileData) -> str:
    if data.n < FULL_MODEL_MIN_OBS:
        return f"{data.n} observations < {FULL_MODEL_MIN_OBS} for its 7 parameters"
    late = persistence_samples(data)
    if late < MIN_PERSISTENCE_SAMPLES:
        return (
            f"{late} quantifiable sample(s) more than {PERSISTENCE_PHASE_AFTER_PEAK:g} days "
            f"after the peak (< {MIN_PERSISTENCE_SAMPLES}): no persistence phase to estimate"
        )
    return ""


def choose_model(data: ProfileData, reduced: str, flags: list[str]) -> Fit:
    """The full or reduced model by AICc (``reduced``: ``aic``, ``never`` or ``always``;
    ``aic`` keeps its historical name and means the information-criterion choice).

    Appends to ``flags`` why the reduced model was chosen or the full one not tried.
    """
    limits = parameter_bounds(data)
    points = start_points(data, limits)
    fits = []
    if reduced != "never":
        fits.append(fit_model(data, False, limits, points))
    if reduced != "always":
        why = _why_not_full(data) if reduced == "aic" else ""
        if why:
            flags.append(f"full model not tried: {why}; reduced model (fb = 0)")
        else:
            fits.append(fit_model(data, True, limits, points))
    if not fits:
        fits.append(fit_model(data, False, limits, points))
    # Reduced first, so that a tie (within 1e-6) keeps the simpler model.
    fit = min(fits, key=lambda f: (round(f.aicc, 6), f.k))
    if len(fits) == 2 and not fit.full:
        other = fits[1]
        flags.append(
            f"reduced model (fb = 0) chosen by AICc ({fit.aicc:.2f} vs full {other.aicc:.2f})"
        )
    return fit


def bound_text(fit: Fit, data: ProfileData) -> list[str]:
    """'sigma at its lower bound 0.05'-style descriptions of the parameters on a bound."""
    bounds = parameter_bounds(data)
    texts = []
    for name in fit.at_bound:
        i = THETA_NAMES.index(name)
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
