"""Terminal elimination rate λz and half-life: PKNCA ``pk.calc.half.life`` (R/half.life.R).

Gabrielsson J, Weiner D. Pharmacokinetic & Pharmacodynamic Data Analysis, 4th ed. 2000,
§2.8.4 (λz estimation). The points are chosen automatically with PKNCA's defaults
``min.hl.points = 3``, ``adj.r.squared.factor = 1e-4`` and
``allow.tmax.in.half.life = FALSE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ckpk.pk.cleaning import Levels, clean_conc_blq
from ckpk.pk.observed import calc_tlast, calc_tmax

# PKNCA.options() defaults.
MIN_HL_POINTS = 3
ADJ_R_SQUARED_FACTOR = 1e-4


@dataclass(frozen=True)
class HalfLife:
    """Result of :func:`calc_half_life` (PKNCA ``pk.calc.half.life`` columns)."""

    lambda_z: float = math.nan
    r_squared: float = math.nan
    adj_r_squared: float = math.nan
    lambda_z_time_first: float = math.nan
    lambda_z_time_last: float = math.nan
    lambda_z_n_points: float = math.nan
    clast_pred: float = math.nan
    half_life: float = math.nan
    span_ratio: float = math.nan
    reason: str = ""


def _fit_half_life(time: np.ndarray, log_conc: np.ndarray, tlast: float) -> HalfLife:
    """Least squares of ln(C) on t (PKNCA ``fit_half_life``), R² and adjusted R²."""
    n = len(time)
    tm = time.mean()
    dx = time - tm
    if np.ptp(log_conc) == 0:
        # Flat: slope exactly 0 and R² = 0/0, which PKNCA never selects.
        slope, intercept, r2 = 0.0, float(log_conc[0]), math.nan
    else:
        ym = log_conc.mean()
        dy = log_conc - ym
        slope = float((dx * dy).sum() / (dx * dx).sum())
        intercept = float(ym - slope * tm)
        resid = log_conc - (intercept + slope * time)
        r2 = 1.0 - float((resid * resid).sum()) / float((dy * dy).sum())
    adj = 1.0 - (1.0 - r2) * (n - 1) / (n - 2) if n > 2 else math.nan
    lambda_z = -slope
    half_life = math.log(2.0) / lambda_z if lambda_z != 0 else math.inf
    return HalfLife(
        lambda_z=lambda_z,
        r_squared=r2,
        adj_r_squared=adj,
        lambda_z_time_first=float(time.min()),
        lambda_z_time_last=float(time.max()),
        lambda_z_n_points=float(n),
        clast_pred=math.exp(intercept + slope * tlast),
        half_life=half_life,
        span_ratio=float(time.max() - time.min()) / half_life,
    )


def calc_half_life(
    conc: Levels,
    time: Levels,
    tmax: float | None = None,
    tlast: float | None = None,
    min_hl_points: int = MIN_HL_POINTS,
    adj_r_squared_factor: float = ADJ_R_SQUARED_FACTOR,
    allow_tmax_in_half_life: bool = False,
) -> HalfLife:
    """Terminal λz and half-life by automatic point selection (PKNCA ``pk.calc.half.life``).

    Gabrielsson & Weiner §2.8.4. Candidates are the levels > 0 strictly after Tmax
    (``allow.tmax.in.half.life = FALSE``; ``allow_tmax_in_half_life=True`` admits Tmax
    itself). With at least ``min_hl_points`` of them, fit ln(C) on t over the last 3, 4,
    … points; keep the fits with λz > 0 whose adjusted R²
    exceeds (best adjusted R² of *all* fits) − 1e-4; of those, the one with the most
    points. Fewer candidates → NA with PKNCA's reason; no qualifying fit → NA.
    """
    c, t = clean_conc_blq(conc, time)
    if tmax is None:
        tmax = calc_tmax(c, t)
    if tlast is None:
        tlast = calc_tlast(c, t)
    if math.isnan(tmax):
        keep = np.zeros(c.shape, bool)
    else:
        keep = (c > 0) & ((t >= tmax) if allow_tmax_in_half_life else (t > tmax))
    tk, ck = t[keep], c[keep]
    if tk.size < min_hl_points:
        return HalfLife(
            reason=f"fewer than {min_hl_points} points after Tmax ({tk.size})",
        )
    log_c = np.log(ck)
    fits = [_fit_half_life(tk[-i:], log_c[-i:], tlast) for i in range(min_hl_points, tk.size + 1)]
    adj = np.array([f.adj_r_squared for f in fits], dtype=float)
    best = np.nanmax(adj) if not np.isnan(adj).all() else -math.inf
    with np.errstate(invalid="ignore"):
        ok = [
            (f.lambda_z > 0) and (a > best - adj_r_squared_factor)
            for f, a in zip(fits, adj, strict=True)
        ]
    chosen = [f for f, good in zip(fits, ok, strict=True) if good]
    if not chosen:
        return HalfLife(
            reason="no terminal fit with lambda_z > 0 within "
            f"{adj_r_squared_factor:g} of the best adjusted R²",
        )
    return max(chosen, key=lambda f: f.lambda_z_n_points)
