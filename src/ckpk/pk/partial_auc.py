"""The partial AUC ``auc_0_<END>``: PKNCA ``pk.calc.aucint.last`` over the interval [0, END]
(R/aucint.R), the level at an unsampled end interpolated or extrapolated.

The end day is ``nca.partial_auc_end`` (``--end``), 28 unless set
(:data:`ckpk.pk.parameters.DEFAULT_PARTIAL_AUC_END`); the column is named after it. How
``aucint`` differs from ``auclast`` over the same days is in :mod:`ckpk.pk.nca`, points 1-4.
"""

from __future__ import annotations

import math

import numpy as np

from ckpk.pk.auc import Value, auc_integrate, choose_interval_method, undefined_log_interval
from ckpk.pk.cleaning import Levels, clean_conc_blq
from ckpk.pk.interpolation import interp_extrap_conc
from ckpk.pk.observed import calc_tlast
from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, format_day, partial_auc_column


def calc_aucint(
    conc: Levels,
    time: Levels,
    start: float = 0.0,
    end: float = DEFAULT_PARTIAL_AUC_END,
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
        return Value(
            math.nan, f"interval end {format_day(end)} is not after start {format_day(start)}"
        )
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
    value = auc_integrate(c, t, rules)
    if math.isnan(value):
        why = undefined_log_interval(c, t, rules)
        if why and c[-1] == 0 and t[-1] == end and end not in set(np.asarray(time, float)):
            why += f": a BLQ sample after Tlast, then the unsampled day {format_day(end)}"
        return Value(math.nan, why or "the interval integral is not a number")
    return Value(value)


def partial_auc(
    level: np.ndarray, day: np.ndarray, end: float, method: str
) -> tuple[float, list[str]]:
    """``auc_0_<end>`` of one profile (BLQ = 0, days >= 0) and its flags for ``pk/nca.tsv``."""
    column = partial_auc_column(end)
    if not ((day >= 0) & (day <= end)).any():
        # pk.nca computes nothing for an interval without data ("No data for interval").
        return math.nan, [f"{column}: no sample in [0, {format_day(end)}]"]
    aucint = calc_aucint(level, day, 0.0, end, method, "AUClast")
    flags = [f"{column}: {aucint.reason}"] if aucint.reason else []
    flags += [f"{column}: {note}" for note in _end_notes(level, day, end, method)]
    return aucint.value, flags


def _end_notes(v: np.ndarray, d: np.ndarray, end: float, method: str) -> list[str]:
    """Say how the partial AUC reached its ends when they were not sampled (for the analyst)."""
    c, t = clean_conc_blq(v, d)
    if np.all(c == 0):
        return []
    notes = []
    if not (t == 0).any():
        notes.append("no day-0 sample, C(0)=0 assumed (PKNCA conc.origin)")
    if not (t == end).any():
        tlast = calc_tlast(c, t)
        if end > tlast:
            notes.append(f"day {format_day(end)} after Tlast, C({format_day(end)})=0")
        elif end > t.min():
            i = int(np.flatnonzero(t <= end)[-1])
            rule = choose_interval_method(c, t, tlast, method, "AUClast")[i]
            notes.append(
                f"day {format_day(end)} not sampled, C({format_day(end)}) interpolated "
                f"({rule}) between days {format_day(t[i])} and {format_day(t[i + 1])}"
            )
    return notes
