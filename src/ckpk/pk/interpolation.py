"""The level between and after samples: PKNCA ``interpolate.conc``, ``extrapolate.conc`` and
``interp.extrap.conc`` (R/interpolate.conc.R), used by the partial AUC to reach an
unsampled end day.
"""

from __future__ import annotations

import math

import numpy as np

from ckpk.pk.auc import choose_interval_method
from ckpk.pk.cleaning import Levels, clean_conc_blq
from ckpk.pk.observed import calc_tlast


def interpolate_conc(
    conc: Levels,
    time: Levels,
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
    conc: Levels,
    time: Levels,
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
    conc: Levels,
    time: Levels,
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
