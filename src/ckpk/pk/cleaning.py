"""A profile as NCA sees it: PKNCA's ``clean.conc.na`` and ``clean.conc.blq`` (R/cleaners.R).

Every calculation in :mod:`ckpk.pk.nca` starts from these two steps, as its PKNCA
counterpart does, so each may be called on raw or on already cleaned data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Levels = Sequence[float] | np.ndarray


def profile_arrays(conc: Levels, time: Levels) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays sorted by time (stable), as ``pk.nca`` sorts each group."""
    c = np.asarray(conc, dtype=float).ravel()
    t = np.asarray(time, dtype=float).ravel()
    if c.shape != t.shape:
        raise ValueError("conc and time must have the same length")
    order = np.argsort(t, kind="mergesort")
    return c[order], t[order]


def clean_conc_blq(conc: Levels, time: Levels) -> tuple[np.ndarray, np.ndarray]:
    """Drop missing levels and BLQ samples between quantifiable ones.

    PKNCA ``clean.conc.na(conc.na="drop")`` then ``clean.conc.blq`` with its default
    ``list(first="keep", middle="drop", last="keep")``: a 0 at or before the first
    quantifiable sample (Tfirst) and at or after the last (Tlast) stays 0; a 0 strictly
    between Tfirst and Tlast is removed. With every sample 0, all are kept. Returns
    ``(conc, time)`` sorted by time. Idempotent, so every calc function may call it as
    its PKNCA counterpart does.
    """
    c, t = profile_arrays(conc, time)
    keep = ~np.isnan(c)
    c, t = c[keep], t[keep]
    positive = c > 0
    if positive.any():
        tfirst, tlast = t[positive].min(), t[positive].max()
        middle = (c == 0) & (t > tfirst) & (t < tlast)
        c, t = c[~middle], t[~middle]
    return c, t
