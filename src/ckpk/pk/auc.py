"""AUC integration rules: PKNCA ``pk.calc.auxc`` (auclast, aucall, aucinf.obs) with its
interval rules ``choose_interval_method`` and ``auc_integrate`` (R/auc.R,
R/auc_integrate.R).

Gabrielsson J, Weiner D. Pharmacokinetic & Pharmacodynamic Data Analysis, 4th ed. 2000,
§2.8.1 (linear trapezoid) and §2.8.3 (log-linear trapezoid). ``auc.method`` is
``"lin up/log down"`` (the log trapezoid only where the level falls and neither end is 0),
``"linear"``, or ``"lin-log"`` (linear up to Tmax, the log trapezoid after it wherever
neither end is 0, whether the level falls or not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ckpk.errors import InputError
from ckpk.pk.cleaning import Levels, clean_conc_blq, profile_arrays
from ckpk.pk.observed import calc_tlast
from ckpk.pk.parameters import format_day

AUC_METHODS = ("lin-up/log-down", "linear", "lin-log")

# PKNCA's own spellings are accepted too, so a PK analyst can paste them.
_METHOD_ALIASES = {
    "lin-up/log-down": "lin-up/log-down",
    "lin up/log down": "lin-up/log-down",
    "linear": "linear",
    "lin-log": "lin-log",
    "lin log": "lin-log",
}


def resolve_method(method: str) -> str:
    """The AUC method in ckpk's spelling; :class:`InputError` for an unknown one."""
    resolved = _METHOD_ALIASES.get(str(method).strip().lower())
    if resolved is None:
        raise InputError(f"unknown AUC method {method!r}; choose one of {', '.join(AUC_METHODS)}")
    return resolved


@dataclass(frozen=True)
class Value:
    """A parameter value with PKNCA's exclusion reason (empty when the value is fine)."""

    value: float
    reason: str = ""


def choose_interval_method(
    conc: np.ndarray, time: np.ndarray, tlast: float, method: str, auc_type: str
) -> list[str]:
    """Rule for each interval between samples, plus the extrapolation after the last.

    PKNCA ``choose_interval_method`` (R/auc_integrate.R). Returns ``len(conc)`` items:
    item i is the rule between samples i and i+1 (``"linear"``, ``"log"`` or
    ``"zero"``), the last item the extrapolation (``"zero"`` or ``"extrap_log"``).
    ``linear``: linear up to ``tlast``. ``lin-up/log-down``: log where the level falls
    and the later level is not 0, linear otherwise. ``lin-log``: linear for intervals
    ending at or before Tmax (the first day of Cmax) and for intervals with a 0 at
    either end, log for the others. All: 0 → 0 intervals and intervals
    after ``tlast`` are zero; the interval starting at ``tlast`` is linear for AUCall
    (the triangle to the next BLQ) and zero otherwise.
    """
    n = len(conc)
    if n == 0:
        return []
    if np.all(conc == 0):
        return ["zero"] * n
    method = resolve_method(method)
    ret = ["zero"] * n
    idx_tlast = int(np.flatnonzero(time == tlast)[0])
    tmax = float(time[int(np.argmax(conc))])  # first day of the maximum, as calc_tmax
    for i in range(n - 1):
        c1, c2 = conc[i], conc[i + 1]
        if method == "linear":
            ret[i] = "linear" if i < idx_tlast else "zero"
        elif method == "lin-log":
            ret[i] = "linear" if (time[i + 1] <= tmax or c1 == 0 or c2 == 0) else "log"
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


def auc_integrate(
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


def undefined_log_interval(conc: np.ndarray, time: np.ndarray, rules: list[str]) -> str:
    """Why an integrated AUC is NaN: a log trapezoid over two equal levels (0/0), which
    PKNCA evaluates to NA as well ("" when no interval explains it)."""
    for i, rule in enumerate(rules[:-1]):
        if rule == "log" and conc[i] == conc[i + 1]:
            level = "zeros" if conc[i] == 0 else f"equal levels ({conc[i]:g})"
            return (
                f"the log trapezoid from day {format_day(time[i])} to day "
                f"{format_day(time[i + 1])} runs between two {level}, which is 0/0 "
                "(PKNCA reports NA)"
            )
    return ""


def calc_auc(
    conc: Levels,
    time: Levels,
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
    c, t = profile_arrays(conc, time)
    # pk.nca hands each interval only its own samples, then pk.calc.auxc cleans them.
    c, t = clean_conc_blq(c[t >= 0], t[t >= 0])
    if c.size == 0:
        return Value(math.nan, "no data for AUC calculation")
    if c.size == 1:
        return Value(math.nan, "only one measured level")
    if np.all(c == 0):
        return Value(0.0)
    if 0.0 < t.min():
        return Value(math.nan, f"no day-0 sample (first on day {format_day(t.min())})")
    tlast = calc_tlast(c, t)
    rules = choose_interval_method(c, t, tlast, method, auc_type)
    value = auc_integrate(c, t, rules, clast=clast, lambda_z=lambda_z)
    return Value(value, undefined_log_interval(c, t, rules) if math.isnan(value) else "")
