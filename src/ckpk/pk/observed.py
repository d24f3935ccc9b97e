"""Parameters read off the observed profile: Cmax, Tmax, Tlast, Clast (PKNCA
R/pk.calc.simple.R, ``pk.calc.cmax``, ``pk.calc.tmax``, ``pk.calc.tlast``,
``pk.calc.clast.obs``).

None of them is interpolated; a BLQ sample counts as 0.
"""

from __future__ import annotations

import math

import numpy as np

from ckpk.pk.cleaning import Levels, profile_arrays


def calc_cmax(conc: Levels) -> float:
    """Largest level, BLQ counted as 0 (PKNCA ``pk.calc.cmax``; NaN only when no sample).

    Cmax is the observed maximum, never an interpolated one. An all-BLQ profile has
    Cmax = 0, as in PKNCA.
    """
    c = np.asarray(conc, dtype=float)
    c = c[~np.isnan(c)]
    return float(c.max()) if c.size else math.nan


def calc_tmax(conc: Levels, time: Levels) -> float:
    """First day of Cmax (PKNCA ``pk.calc.tmax`` with ``first.tmax=TRUE``).

    NaN when there is no sample or every level is 0 or missing.
    """
    c, t = profile_arrays(conc, time)
    valid = ~np.isnan(c)
    if not (c[valid] > 0).any():
        return math.nan
    cmax = c[valid].max()
    return float(t[valid][c[valid] == cmax][0])


def calc_tlast(conc: Levels, time: Levels) -> float:
    """Last day with a level above LLOQ, i.e. > 0 (PKNCA ``pk.calc.tlast``); NaN if none."""
    c, t = profile_arrays(conc, time)
    positive = ~np.isnan(c) & (c > 0)
    return float(t[positive].max()) if positive.any() else math.nan


def calc_clast_obs(conc: Levels, time: Levels) -> float:
    """Level at Tlast (PKNCA ``pk.calc.clast.obs``).

    0 when every sample is BLQ (PKNCA ≥ 0.11, issue #253); NaN when none is given.
    """
    c, t = profile_arrays(conc, time)
    valid = ~np.isnan(c)
    if not valid.any():
        return math.nan
    tlast = calc_tlast(c, t)
    if math.isnan(tlast):
        return 0.0
    return float(c[valid & (t == tlast)][0])
