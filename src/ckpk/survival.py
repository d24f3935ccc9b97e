"""Kaplan–Meier summaries of time-to-event data with right censoring.

How long CAR T cells persist, or how long B-cell aplasia lasts, is time-to-event data:
a subject whose last sample still shows the cells says "at least this long", not "this
long". The Kaplan–Meier product-limit estimator (Kaplan & Meier 1958, J Am Stat Assoc
53:457) uses such censored times without bias; the estimate itself and its pointwise
95 % band (Greenwood's variance on the log(−log) scale, "exponential Greenwood", as in
lifelines and R's survival with ``conf.type = "log-log"``) come from
:func:`scipy.stats.ecdf`. The median's interval is where the band crosses 0.5
(Brookmeyer & Crowley 1982, Biometrics 38:29), as lifelines' ``median_survival_times``
reads it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan–Meier estimate; times where the curve steps and S(t) just after them."""

    n: int
    n_events: int
    times: np.ndarray
    survival: np.ndarray
    lower: np.ndarray  # 95 % band
    upper: np.ndarray
    median: float  # NaN when S(t) never reaches 0.5 (more than half still going)
    median_ci_low: float
    median_ci_high: float  # NaN: not reached within follow-up
    censored_tail: bool  # the longest time is censored: S(t) is unknown beyond it

    def survival_at(self, t: float) -> float:
        """S(t); NaN beyond the last time when that time is censored (unknown there)."""
        if self.n == 0:
            return math.nan
        index = np.searchsorted(self.times, t, side="right") - 1
        if index < 0:
            return 1.0
        if t > self.times[-1] and self.censored_tail:
            return math.nan
        return float(self.survival[index])


def _first_time_at_or_below(times: np.ndarray, values: np.ndarray, level: float) -> float:
    below = np.flatnonzero(values <= level + 1e-12)
    return float(times[below[0]]) if below.size else math.nan


def kaplan_meier(durations: Sequence[float], events: Sequence[bool]) -> KaplanMeier:
    """Kaplan–Meier estimate of ``durations`` where ``events`` says which ended (True)
    and which are censored (False, still going at that time)."""
    durations = np.asarray(durations, dtype=float)
    events = np.asarray(events, dtype=bool)
    if durations.size == 0:
        empty = np.array([], dtype=float)
        return KaplanMeier(0, 0, empty, empty, empty, empty, math.nan, math.nan, math.nan, True)
    if not np.isfinite(durations).all() or (durations < 0).any():
        raise ValueError("durations must be finite and not negative")
    n_events = int(events.sum())
    if n_events == 0:
        # No event: S(t) = 1 up to the last time; scipy needs at least one event.
        times = np.unique(durations)
        ones = np.ones_like(times)
        return KaplanMeier(len(durations), 0, times, ones, ones, ones, *[math.nan] * 3, True)
    data = stats.CensoredData(uncensored=durations[events], right=durations[~events])
    sf = stats.ecdf(data).sf
    with warnings.catch_warnings():
        # log(-log S) is undefined where S is 0 or 1; the band is S itself there.
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(confidence_level=0.95, method="log-log")
    times = np.asarray(sf.quantiles, dtype=float)
    survival = np.asarray(sf.probabilities, dtype=float)
    lower = np.asarray(band.low.probabilities, dtype=float)
    upper = np.asarray(band.high.probabilities, dtype=float)
    lower = np.where(np.isnan(lower), survival, lower)
    upper = np.where(np.isnan(upper), survival, upper)
    last = durations.max()
    return KaplanMeier(
        n=len(durations),
        n_events=n_events,
        times=times,
        survival=survival,
        lower=lower,
        upper=upper,
        median=_first_time_at_or_below(times, survival, 0.5),
        median_ci_low=_first_time_at_or_below(times, lower, 0.5),
        median_ci_high=_first_time_at_or_below(times, upper, 0.5),
        censored_tail=not events[durations == last].any(),
    )
