"""Non-compartmental analysis (NCA) with the rules and defaults of PKNCA 0.12.1 (docs/rules.md).

One profile is one subject × analyte: study day (day 0 = CAR T infusion) against level,
BLQ coded as 0, missing samples (NaN) dropped, screening days (< 0) left out. Each PK
parameter has its own function named after the PKNCA function it reproduces
(``pk.calc.cmax`` → :func:`calc_cmax`, ...); :func:`nca_profile` runs them on one
profile and :func:`nca_table` on a whole concentrations table. A parameter a rule
cannot give is NaN with a short reason in ``flags`` (PKNCA's "exclude" attribute),
never an exception.

PKNCA defaults reproduced: ``conc.blq = list(first="keep", middle="drop",
last="keep")``, ``conc.na = "drop"``, ``first.tmax = TRUE``, ``min.hl.points = 3``,
``adj.r.squared.factor = 1e-4``, ``allow.tmax.in.half.life = FALSE``, intervals
``[0, Inf]`` (cmax … aucinf.obs) and ``[0, END]`` (aucint.last), ``auc.method`` either
``"lin up/log down"`` or ``"linear"``.

Surprises in PKNCA 0.12.1 that this module reproduces on purpose (each checked against
PKNCA's own output in ``../shared/reference/pk/profiles_pknca.csv`` where the reference
has such a case, otherwise read from PKNCA's source ``R/aucint.R``, ``R/auc.R``,
``R/auc_integrate.R``, ``R/interpolate.conc.R``, ``R/half.life.R``, ``R/cleaners.R``):

1. No day-0 sample (reference S7): ``auclast``, ``aucall`` and ``aucinf.obs`` are NA
   ("Requesting an AUC range starting (0) before the first measurement is not
   allowed"), yet ``aucint.last`` over [0, 28] has a value because
   ``interpolate.conc`` returns ``conc.origin = 0`` before the first sample.
2. ``aucint.last`` works on the *cleaned* whole profile (``conc.group``, cleaned by
   ``clean.conc.blq`` inside ``pk.calc.auxcint``): a BLQ between quantifiable samples
   is dropped before the day-28 level is interpolated (reference S2: 141210 with the
   day-7 BLQ dropped, not the 127700 of ``auclast`` over [0, 28]), and samples after
   day 28 are used to interpolate it.
3. A missing day 28 before Tlast is interpolated with the interval's own rule (log when
   the level falls and neither end is 0 under lin-up/log-down, else linear); after
   Tlast it is 0 (AUClast extrapolation) and the interval ending at day 28 is forced to
   the log trapezoid, which gives 0 area from a positive level (reference S3).
4. ``pk.calc.auxcint`` chooses the per-interval rules with ``tlast = max(time in the
   interval)``, not the real Tlast: a BLQ *sample* inside [0, 28] after Tlast is
   reached by a linear triangle (an AUCall-like area), although ``auclast`` over
   [0, 28] would stop at Tlast. If such a BLQ sample is followed by an unsampled day 28
   (extrapolated 0), the forced log trapezoid between two zeros is 0/log(0/0) = NaN in
   R, so PKNCA reports NA; ``auc_0_28`` is then empty with that reason.
5. All samples BLQ (reference S5): Cmax = 0, Clast = 0, AUClast = AUCall = AUCinf,obs
   = aucint = 0, while Tmax, Tlast and λz are NA.
6. Tied Cmax (reference S4): Tmax is the first; the later tied sample is *after* Tmax
   and so may enter the λz regression.
7. λz: the best adjusted R² is taken over every candidate fit, including fits with
   λz ≤ 0. When the best fit rises, a falling fit qualifies only within 1e-4 of it, so
   λz can be NA although some 3-point tail falls (reference V04, V05).
8. A single sample gives an NA AUC ("AUC cannot be calculated with only one measured
   concentration"), unlike ``aucint`` which is 0 when every level is 0.

Deviations (documented, deliberate): screening days (< 0) are removed before anything,
so C(0) = 0 is assumed when day 0 is absent (PKNCA would interpolate from a screening
sample passed in ``conc.group``); the dose-boundary check of later PKNCA versions
(``conc_is_increasing_after_dose``) is not applied, as in 0.12.1; a negative level or a
duplicate day is reported in ``flags`` instead of stopping as PKNCA's assertions do.

References: Gabrielsson J, Weiner D. Pharmacokinetic & Pharmacodynamic Data Analysis,
4th ed. 2000, §2.8.1 (linear trapezoid), §2.8.3 (log-linear trapezoid), §2.8.4
(λz estimation); PKNCA 0.12.1 (Denney W, Duvvuri S, Buckeridge C; CRAN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ckpk.errors import InputError

AUC_METHODS = ("lin-up/log-down", "linear")

# PKNCA's own spellings are accepted too, so a PK analyst can paste them.
_METHOD_ALIASES = {
    "lin-up/log-down": "lin-up/log-down",
    "lin up/log down": "lin-up/log-down",
    "linear": "linear",
}

# PKNCA.options() defaults.
MIN_HL_POINTS = 3
ADJ_R_SQUARED_FACTOR = 1e-4

NCA_COLUMNS: list[str] = [
    "subject_id",
    "dose_level",
    "analyte",
    "unit",
    "cmax",
    "tmax",
    "clast",
    "tlast",
    "auc_0_28",
    "auclast",
    "lambda_z",
    "half_life",
    "aucinf_obs",
    "persistence_days",
    "n_obs",
    "n_blq",
    "flags",
    "r_squared",
    "adj_r_squared",
    "lambda_z_n_points",
    "lambda_z_time_first",
    "lambda_z_time_last",
    "aucall",
    "method",
]

NCA_COLUMN_DOC: dict[str, str] = {
    "subject_id": "subject identifier",
    "dose_level": "dose level from the subject sheet (empty when not given)",
    "analyte": "analyte (car_per_ul, car_pct_cd3, car_copies_per_ug, ...)",
    "unit": "unit U of the analyte's level",
    "cmax": "largest level, BLQ = 0 (U; PKNCA cmax)",
    "tmax": "first day of Cmax (day; PKNCA tmax)",
    "clast": "last level above LLOQ (U; PKNCA clast.obs)",
    "tlast": "day of Clast (day; PKNCA tlast)",
    "auc_0_28": "AUC over [0, END], C(END) interpolated, C(0)=0 (U·day; PKNCA aucint.last)",
    "auclast": "AUC from day 0 to Tlast, needs a day-0 sample (U·day; PKNCA auclast)",
    "lambda_z": "terminal rate, log-linear fit, >=3 points after Tmax (1/day; PKNCA lambda.z)",
    "half_life": "terminal half-life ln2/lambda_z (day; PKNCA half.life)",
    "aucinf_obs": "auclast + Clast/lambda_z (U·day; PKNCA aucinf.obs)",
    "persistence_days": "persistence = Tlast, last day above LLOQ (day)",
    "n_obs": "samples used: non-missing, day >= 0, BLQ included (count)",
    "n_blq": "of which BLQ (count)",
    "flags": "';'-separated reasons for empty values, notes on interpolation",
    "r_squared": "R² of the lambda_z regression (unitless)",
    "adj_r_squared": "adjusted R² of the lambda_z regression (unitless)",
    "lambda_z_n_points": "points in the lambda_z regression (count)",
    "lambda_z_time_first": "first day in the lambda_z regression (day)",
    "lambda_z_time_last": "last day in the lambda_z regression (day)",
    "aucall": "auclast + triangle to the next BLQ sample (U·day; PKNCA aucall)",
    "method": "AUC rule: lin-up/log-down (log when falling, no 0 end) or linear",
}

_PROFILE_KEYS = [c for c in NCA_COLUMNS if c not in ("subject_id", "dose_level", "analyte", "unit")]


# --------------------------------------------------------------------------- helpers


def _resolve_method(method: str) -> str:
    resolved = _METHOD_ALIASES.get(str(method).strip().lower())
    if resolved is None:
        raise InputError(f"unknown AUC method {method!r}; choose one of {', '.join(AUC_METHODS)}")
    return resolved


def _arrays(conc: Sequence[float] | np.ndarray, time: Sequence[float] | np.ndarray):
    """Float arrays sorted by time (stable), as ``pk.nca`` sorts each group."""
    c = np.asarray(conc, dtype=float).ravel()
    t = np.asarray(time, dtype=float).ravel()
    if c.shape != t.shape:
        raise ValueError("conc and time must have the same length")
    order = np.argsort(t, kind="mergesort")
    return c[order], t[order]


def _fmt(x: float) -> str:
    return f"{x:g}"


# ------------------------------------------------------------------ data cleaning


def clean_conc_blq(
    conc: Sequence[float] | np.ndarray, time: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drop missing levels and BLQ samples between quantifiable ones.

    PKNCA ``clean.conc.na(conc.na="drop")`` then ``clean.conc.blq`` with its default
    ``list(first="keep", middle="drop", last="keep")``: a 0 at or before the first
    quantifiable sample (Tfirst) and at or after the last (Tlast) stays 0; a 0 strictly
    between Tfirst and Tlast is removed. With every sample 0, all are kept. Returns
    ``(conc, time)`` sorted by time. Idempotent, so every calc function may call it as
    its PKNCA counterpart does.
    """
    c, t = _arrays(conc, time)
    keep = ~np.isnan(c)
    c, t = c[keep], t[keep]
    positive = c > 0
    if positive.any():
        tfirst, tlast = t[positive].min(), t[positive].max()
        middle = (c == 0) & (t > tfirst) & (t < tlast)
        c, t = c[~middle], t[~middle]
    return c, t


# ------------------------------------------------------------- simple parameters


def calc_cmax(conc: Sequence[float] | np.ndarray) -> float:
    """Largest level, BLQ counted as 0 (PKNCA ``pk.calc.cmax``; NaN only when no sample).

    Cmax is the observed maximum, never an interpolated one. An all-BLQ profile has
    Cmax = 0, as in PKNCA.
    """
    c = np.asarray(conc, dtype=float)
    c = c[~np.isnan(c)]
    return float(c.max()) if c.size else math.nan


def calc_tmax(conc: Sequence[float] | np.ndarray, time: Sequence[float] | np.ndarray) -> float:
    """First day of Cmax (PKNCA ``pk.calc.tmax`` with ``first.tmax=TRUE``).

    NaN when there is no sample or every level is 0 or missing.
    """
    c, t = _arrays(conc, time)
    valid = ~np.isnan(c)
    if not (c[valid] > 0).any():
        return math.nan
    cmax = c[valid].max()
    return float(t[valid][c[valid] == cmax][0])


def calc_tlast(conc: Sequence[float] | np.ndarray, time: Sequence[float] | np.ndarray) -> float:
    """Last day with a level above LLOQ, i.e. > 0 (PKNCA ``pk.calc.tlast``); NaN if none."""
    c, t = _arrays(conc, time)
    positive = ~np.isnan(c) & (c > 0)
    return float(t[positive].max()) if positive.any() else math.nan


def calc_clast_obs(conc: Sequence[float] | np.ndarray, time: Sequence[float] | np.ndarray) -> float:
    """Level at Tlast (PKNCA ``pk.calc.clast.obs``).

    0 when every sample is BLQ (PKNCA ≥ 0.11, issue #253); NaN when none is given.
    """
    c, t = _arrays(conc, time)
    valid = ~np.isnan(c)
    if not valid.any():
        return math.nan
    tlast = calc_tlast(c, t)
    if math.isnan(tlast):
        return 0.0
    return float(c[valid & (t == tlast)][0])


# ------------------------------------------------------- integration machinery


def choose_interval_method(
    conc: np.ndarray, time: np.ndarray, tlast: float, method: str, auc_type: str
) -> list[str]:
    """Rule for each interval between samples, plus the extrapolation after the last.

    PKNCA ``choose_interval_method`` (R/auc_integrate.R). Returns ``len(conc)`` items:
    item i is the rule between samples i and i+1 (``"linear"``, ``"log"`` or
    ``"zero"``), the last item the extrapolation (``"zero"`` or ``"extrap_log"``).
    ``linear``: linear up to ``tlast``. ``lin-up/log-down``: log where the level falls
    and the later level is not 0, linear otherwise. Both: 0 → 0 intervals and intervals
    after ``tlast`` are zero; the interval starting at ``tlast`` is linear for AUCall
    (the triangle to the next BLQ) and zero otherwise.
    """
    n = len(conc)
    if n == 0:
        return []
    if np.all(conc == 0):
        return ["zero"] * n
    method = _resolve_method(method)
    ret = ["zero"] * n
    idx_tlast = int(np.flatnonzero(time == tlast)[0])
    for i in range(n - 1):
        c1, c2 = conc[i], conc[i + 1]
        if method == "linear":
            ret[i] = "linear" if i < idx_tlast else "zero"
        else:
            ret[i] = "log" if (c2 < c1 and c2 != 0) else "linear"
        if c1 == 0 and c2 == 0:
            ret[i] = "zero"
    for i in range(idx_tlast + 1, n - 1):
        ret[i] = "zero"
    if idx_tlast < n - 1:
        ret[idx_tlast] = "linear" if auc_type == "AUCall" else "zero"
    ret[n - 1] = "extrap_log" if auc_type == "AUCinf" else "zero"
    return ret


def _auc_integrate(
    conc: np.ndarray,
    time: np.ndarray,
    rules: list[str],
    clast: float = math.nan,
    lambda_z: float = math.nan,
) -> float:
    """Sum of the interval areas (PKNCA ``auc_integrate``).

    Linear trapezoid Δt·(C1+C2)/2 (Gabrielsson & Weiner §2.8.1); log trapezoid
    Δt·(C2−C1)/ln(C2/C1) (§2.8.3), evaluated with IEEE arithmetic exactly as R does so
    that a forced log interval from C1 > 0 to 0 gives 0 and from 0 to 0 gives NaN;
    ``extrap_log`` adds Clast/λz.
    """
    total = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, rule in enumerate(rules[:-1]):
            c1, c2 = np.float64(conc[i]), np.float64(conc[i + 1])
            dt = np.float64(time[i + 1] - time[i])
            if rule == "linear":
                total += float(dt * (c2 + c1) / 2)
            elif rule == "log":
                total += float(dt * (c2 - c1) / np.log(c2 / c1))
    if rules and rules[-1] == "extrap_log":
        with np.errstate(divide="ignore", invalid="ignore"):
            total += float(np.float64(clast) / np.float64(lambda_z))
    return float(total)


def interpolate_conc(
    conc: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    time_out: float,
    method: str = "lin-up/log-down",
) -> float:
    """Level at ``time_out`` between the first sample and Tlast (PKNCA ``interpolate.conc``).

    Before the first sample: ``conc.origin = 0``. At a sample: its level. Otherwise the
    rule of the surrounding interval from :func:`choose_interval_method` (linear,
    log ``C1·(C2/C1)^((t−t1)/(t2−t1))``, or 0). Works on cleaned data.
    """
    c, t = clean_conc_blq(conc, time)
    if c.size == 0 or time_out < t.min():
        return 0.0
    if np.all(c == 0):
        return 0.0
    tlast = calc_tlast(c, t)
    if time_out > tlast:
        raise ValueError("interpolate_conc works up to Tlast only; use interp_extrap_conc")
    exact = t == time_out
    if exact.any():
        return float(c[exact][0])
    rules = choose_interval_method(c, t, tlast, method, "AUClast")
    i = int(np.flatnonzero(t <= time_out)[-1])
    t1, t2, c1, c2 = t[i], t[i + 1], c[i], c[i + 1]
    rule = rules[i]
    if rule == "linear":
        return float(c1 + (time_out - t1) / (t2 - t1) * (c2 - c1))
    if rule == "log":
        return float(math.exp(math.log(c1) + (time_out - t1) / (t2 - t1) * math.log(c2 / c1)))
    return 0.0


def extrapolate_conc(
    conc: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    time_out: float,
    auc_type: str = "AUClast",
) -> float:
    """Level after Tlast (PKNCA ``extrapolate.conc``) for AUClast or AUCall.

    AUClast: 0. AUCall: 0 when the profile ends quantifiable or the previous sample is
    BLQ, otherwise the linear triangle from Clast down to 0 at the next (BLQ) sample.
    """
    c, t = clean_conc_blq(conc, time)
    tlast = calc_tlast(c, t)
    if math.isnan(tlast):
        return math.nan
    if time_out <= tlast:
        raise ValueError("extrapolate_conc works after Tlast only; use interp_extrap_conc")
    if auc_type == "AUClast" or tlast == t.max():
        return 0.0
    if auc_type != "AUCall":
        raise ValueError(f"unsupported auc_type {auc_type!r}")
    time_prev = t[t <= time_out].max()
    conc_prev = c[t == time_prev][0]
    if conc_prev == 0:
        return 0.0
    time_next = t[t >= time_out].min()
    return float(conc_prev + (time_out - time_prev) / (time_next - time_prev) * (0 - conc_prev))


def interp_extrap_conc(
    conc: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    time_out: float,
    method: str = "lin-up/log-down",
    auc_type: str = "AUClast",
) -> float:
    """Interpolate up to Tlast, extrapolate after it (PKNCA ``interp.extrap.conc``)."""
    c, t = clean_conc_blq(conc, time)
    if np.all(c == 0):
        return 0.0
    if time_out <= calc_tlast(c, t):
        return interpolate_conc(c, t, time_out, method)
    return extrapolate_conc(c, t, time_out, auc_type)


# ------------------------------------------------------------------------- AUCs


@dataclass(frozen=True)
class Value:
    """A parameter value with PKNCA's exclusion reason (empty when the value is fine)."""

    value: float
    reason: str = ""


def calc_auc(
    conc: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    method: str = "lin-up/log-down",
    auc_type: str = "AUClast",
    clast: float = math.nan,
    lambda_z: float = math.nan,
) -> Value:
    """AUC over [0, Inf] (PKNCA ``pk.calc.auxc`` → auclast, aucall, aucinf.obs).

    On cleaned data (:func:`clean_conc_blq`): no sample → NA; one sample → NA; every
    level 0 → 0; first sample after day 0 → NA (PKNCA does not integrate before the
    first measurement, reference S7). Otherwise the interval rules of
    :func:`choose_interval_method` with the real Tlast; ``AUCinf`` adds Clast/λz,
    NA when λz is NA.
    """
    c, t = _arrays(conc, time)
    # pk.nca hands each interval only its own samples, then pk.calc.auxc cleans them.
    c, t = clean_conc_blq(c[t >= 0], t[t >= 0])
    if c.size == 0:
        return Value(math.nan, "no data for AUC calculation")
    if c.size == 1:
        return Value(math.nan, "only one measured level")
    if np.all(c == 0):
        return Value(0.0)
    if 0.0 < t.min():
        return Value(math.nan, f"no day-0 sample (first on day {_fmt(t.min())})")
    tlast = calc_tlast(c, t)
    rules = choose_interval_method(c, t, tlast, method, auc_type)
    return Value(_auc_integrate(c, t, rules, clast=clast, lambda_z=lambda_z))


def calc_aucint(
    conc: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    start: float = 0.0,
    end: float = 28.0,
    method: str = "lin-up/log-down",
    auc_type: str = "AUClast",
) -> Value:
    """AUC over [start, end] with interpolation (PKNCA ``pk.calc.aucint.last`` / ``.all``).

    Follows ``pk.calc.auxcint`` step by step on the cleaned *whole* profile: every level
    0 → 0; ``start``/``end`` not sampled → level from :func:`interp_extrap_conc`
    (``conc.origin = 0`` before the first sample, the interval's own rule up to Tlast,
    AUClast 0 / AUCall triangle after it); keep [start, end]; interval rules from
    :func:`choose_interval_method` with ``tlast = max(time)`` of that window (so an
    observed BLQ after Tlast is reached linearly); the interval ending at an
    extrapolated time is forced to the log trapezoid (0 from a positive level, NaN
    from 0). See the module docstring, points 1-4.
    """
    c, t = clean_conc_blq(conc, time)
    if np.all(c == 0):
        return Value(0.0)
    if not end > start:
        return Value(math.nan, f"interval end {_fmt(end)} is not after start {_fmt(start)}")
    missing = [x for x in dict.fromkeys((start, end)) if not (t == x).any()]
    extrap_times: list[float] = []
    if missing:
        extra = [interp_extrap_conc(c, t, x, method, auc_type) for x in missing]
        tlast = calc_tlast(c, t)
        extrap_times = [x for x in missing if x > tlast]
        t = np.concatenate([t, np.asarray(missing, dtype=float)])
        c = np.concatenate([c, np.asarray(extra, dtype=float)])
        window = (t >= start) & (t <= end)
        c, t = c[window], t[window]
        order = np.argsort(t, kind="mergesort")
        c, t = c[order], t[order]
        if np.isnan(c).any():
            return Value(math.nan, "an interpolated level is missing")
    else:
        window = (t >= start) & (t <= end)
        c, t = c[window], t[window]
    rules = choose_interval_method(c, t, float(t.max()), method, auc_type)
    rules[-1] = "zero"
    for x in extrap_times:
        i = int(np.flatnonzero(t == x)[0]) - 1
        if i >= 0:
            rules[i] = "log"
    value = _auc_integrate(c, t, rules)
    if math.isnan(value):
        return Value(
            math.nan,
            "PKNCA's log trapezoid between two zeros (a BLQ sample after Tlast, then the "
            f"unsampled day {_fmt(end)}) is NaN",
        )
    return Value(value)


# ------------------------------------------------------------------- half-life


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
    conc: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
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


# ------------------------------------------------------------------- profiles


def _empty_result(method: str, n_obs: int = 0, n_blq: int = 0) -> dict:
    row: dict = {key: math.nan for key in _PROFILE_KEYS}
    row.update(n_obs=n_obs, n_blq=n_blq, flags="", method=method)
    return row


def nca_profile(
    day: Sequence[float] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    method: str = "lin-up/log-down",
    end: float = 28.0,
) -> dict:
    """NCA of one subject × analyte profile (value 0 = BLQ, NaN = missing).

    Returns a dict with the keys of :data:`NCA_COLUMNS` from ``cmax`` on (``flags`` a
    ``;``-joined string). Missing samples and days < 0 are dropped first. Rules and the
    PKNCA surprises are in the module docstring; ``auc_0_28`` is ``aucint.last`` over
    [0, ``end``]. Never raises for a bad profile, only for a bad ``method``/``end``.
    """
    method = _resolve_method(method)
    end = float(end)
    if not (end > 0 and math.isfinite(end)):
        raise InputError(f"the partial AUC end must be a positive day, not {end!r}")
    d = np.asarray(day, dtype=float).ravel()
    v = np.asarray(value, dtype=float).ravel()
    if d.shape != v.shape:
        raise InputError("day and value must have the same length")
    flags: list[str] = []
    if (~np.isfinite(d) & ~np.isnan(v)).any():
        flags.append("sample(s) without a valid day ignored")

    usable = np.isfinite(d) & ~np.isnan(v) & (d >= 0)
    bad = usable & ~(np.isfinite(v) & (v >= 0))
    for x in d[bad]:
        flags.append(f"day {_fmt(x)}: negative or infinite value ignored")
    usable &= ~bad
    d, v = d[usable], v[usable]
    order = np.argsort(d, kind="mergesort")
    d, v = d[order], v[order]
    n_obs, n_blq = int(d.size), int((v == 0).sum())
    row = _empty_result(method, n_obs, n_blq)

    if d.size == 0:
        row["flags"] = "; ".join(flags + ["no samples on or after day 0"])
        return row
    dup = np.unique(d[1:][np.diff(d) == 0])
    if dup.size:
        days = ", ".join(_fmt(x) for x in dup)
        row["flags"] = "; ".join(flags + [f"duplicate day {days}: profile not analysed"])
        return row

    row["cmax"] = calc_cmax(v)
    row["tmax"] = calc_tmax(v, d)
    row["tlast"] = calc_tlast(v, d)
    row["clast"] = calc_clast_obs(v, d)
    row["persistence_days"] = row["tlast"]
    if math.isnan(row["tmax"]):
        flags.append("tmax, tlast, persistence_days, lambda_z, half_life: all samples BLQ")

    auclast = calc_auc(v, d, method, "AUClast")
    aucall = calc_auc(v, d, method, "AUCall")
    row["auclast"], row["aucall"] = auclast.value, aucall.value
    if auclast.reason:
        flags.append(f"auclast, aucall, aucinf_obs: {auclast.reason}")

    hl = calc_half_life(v, d, row["tmax"], row["tlast"])
    if not math.isnan(hl.lambda_z):
        row.update(
            lambda_z=hl.lambda_z,
            half_life=hl.half_life,
            r_squared=hl.r_squared,
            adj_r_squared=hl.adj_r_squared,
            lambda_z_n_points=hl.lambda_z_n_points,
            lambda_z_time_first=hl.lambda_z_time_first,
            lambda_z_time_last=hl.lambda_z_time_last,
        )
    elif not math.isnan(row["tmax"]):
        flags.append(f"lambda_z, half_life, aucinf_obs: {hl.reason}")

    aucinf = calc_auc(v, d, method, "AUCinf", clast=row["clast"], lambda_z=hl.lambda_z)
    row["aucinf_obs"] = aucinf.value

    row["auc_0_28"] = math.nan
    in_window = (d >= 0) & (d <= end)
    if not in_window.any():
        # pk.nca computes nothing for an interval without data ("No data for interval").
        flags.append(f"auc_0_28: no sample in [0, {_fmt(end)}]")
    else:
        aucint = calc_aucint(v, d, 0.0, end, method, "AUClast")
        row["auc_0_28"] = aucint.value
        if aucint.reason:
            flags.append(f"auc_0_28: {aucint.reason}")
        flags.extend(_aucint_notes(v, d, end, method))
    row["flags"] = "; ".join(flags)
    return row


def _aucint_notes(v: np.ndarray, d: np.ndarray, end: float, method: str) -> list[str]:
    """Say how auc_0_28 reached its ends when they were not sampled (for the analyst)."""
    c, t = clean_conc_blq(v, d)
    if np.all(c == 0):
        return []
    notes = []
    if not (t == 0).any():
        notes.append("auc_0_28: no day-0 sample, C(0)=0 assumed (PKNCA conc.origin)")
    if not (t == end).any():
        tlast = calc_tlast(c, t)
        if end > tlast:
            notes.append(f"auc_0_28: day {_fmt(end)} after Tlast, C({_fmt(end)})=0")
        elif end > t.min():
            i = int(np.flatnonzero(t <= end)[-1])
            rule = choose_interval_method(c, t, tlast, method, "AUClast")[i]
            notes.append(
                f"auc_0_28: day {_fmt(end)} not sampled, C({_fmt(end)}) interpolated "
                f"({rule}) between days {_fmt(t[i])} and {_fmt(t[i + 1])}"
            )
    return notes


def nca_table(
    concentrations: pd.DataFrame,
    method: str = "lin-up/log-down",
    end: float = 28.0,
    subjects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """NCA of every subject × analyte of a concentrations table (``pk/nca.tsv``).

    ``concentrations`` has the columns of ``pk/concentrations.tsv`` (validated again
    here, so a raw table gives an :class:`InputError` naming the row). A ``blq`` row
    counts as 0 whatever ``value`` holds (empty, 0 or the reading below LLOQ). ``unit``
    is the profile's unit; ``dose_level`` comes from ``subjects`` (columns
    ``subject_id``, ``dose_level``) when given. A bad ``method`` raises
    :class:`InputError`; a bad profile yields a row with empty values and ``flags``.
    """
    from ckpk.pk.concentrations import validate_concentrations

    method = _resolve_method(method)
    table = validate_concentrations(concentrations)
    dose_levels: dict[str, object] = {}
    if subjects is not None:
        missing = [c for c in ("subject_id", "dose_level") if c not in subjects.columns]
        if missing:
            raise InputError(f"subject sheet: missing column(s) {', '.join(missing)}")
        for sid, level in zip(subjects["subject_id"], subjects["dose_level"], strict=True):
            dose_levels.setdefault(str(sid).strip(), level)

    level = np.where(table["blq"].to_numpy(bool), 0.0, table["value"].to_numpy(float))
    table = table.assign(_level=level)
    rows = []
    for (sid, analyte), group in table.groupby(["subject_id", "analyte"], sort=True):
        units = [u for u in pd.unique(group["unit"].dropna().astype(str).str.strip()) if u]
        result = nca_profile(group["day"].to_numpy(float), group["_level"].to_numpy(), method, end)
        flags = [result["flags"]] if result["flags"] else []
        if len(units) > 1:
            result = _empty_result(method, result["n_obs"], result["n_blq"])
            flags = [f"several units ({', '.join(units)}): profile not analysed"]
        dose_level = dose_levels.get(sid, math.nan) if subjects is not None else math.nan
        if subjects is not None and sid not in dose_levels:
            flags.append("dose_level: subject not in the subject sheet")
        result["flags"] = "; ".join(flags)
        rows.append(
            {
                "subject_id": sid,
                "dose_level": dose_level,
                "analyte": analyte,
                "unit": units[0] if units else math.nan,
                **result,
            }
        )
    if not rows:
        return pd.DataFrame(columns=NCA_COLUMNS)
    return pd.DataFrame(rows, columns=NCA_COLUMNS)
