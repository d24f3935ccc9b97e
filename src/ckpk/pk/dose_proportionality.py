"""Does exposure rise in proportion to the dose? The power model of Smith et al. 2000.

ln(Y) = a + b · ln(dose) is fitted by ordinary least squares over subjects with a
numeric dose (CAR+ cells/kg) and a positive Y (Cmax or AUC0–28 of a CAR T analyte).
b = 1 is exact proportionality. Following Smith BP et al., "Confidence interval criteria
for assessment of dose proportionality", Pharm Res 2000;17:1278-1283, proportionality is
concluded when the 90 % confidence interval of b lies inside

    [1 + ln(0.8) / ln(r), 1 + ln(1.25) / ln(r)],   r = highest dose / lowest dose,

the interval within which a doubling of the dose changes exposure by 0.8–1.25 fold of
proportional across the studied range. Conclusions: ``proportional``, ``not shown``
(the interval reaches outside), ``too few doses`` (fewer than two distinct doses or too
few subjects to estimate b and its interval).

Subjects whose Y is 0 (no quantifiable CAR T) cannot enter a log model; they are counted
in ``n_excluded`` rather than silently dropped.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

LOWER_RATIO, UPPER_RATIO = 0.8, 1.25
CONFIDENCE = 0.90
DOSE_PROPORTIONALITY_COLUMNS = [
    "analyte",
    "parameter",
    "n",
    "n_doses",
    "n_excluded",
    "slope",
    "slope_ci90_low",
    "slope_ci90_high",
    "intercept",
    "dose_ratio",
    "acceptance_low",
    "acceptance_high",
    "conclusion",
    "note",
]


def power_model(dose: np.ndarray, value: np.ndarray) -> dict[str, float]:
    """OLS of ln(value) on ln(dose): slope, intercept and the slope's 90 % interval."""
    x, y = np.log(np.asarray(dose, float)), np.log(np.asarray(value, float))
    n = len(x)
    if n < 3 or np.unique(x).size < 2:
        return {}
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    df = n - 2
    se = math.sqrt(float(residual @ residual) / df / float(((x - x.mean()) ** 2).sum()))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "slope_ci90_low": float(slope - half),
        "slope_ci90_high": float(slope + half),
    }


def acceptance_interval(dose_ratio: float) -> tuple[float, float]:
    """Smith et al. 2000 critical region for the slope over a dose range ``dose_ratio``."""
    log_r = math.log(dose_ratio)
    return 1 + math.log(LOWER_RATIO) / log_r, 1 + math.log(UPPER_RATIO) / log_r


def assess(dose: pd.Series, value: pd.Series) -> dict[str, object]:
    """The dose-proportionality row for one analyte × parameter."""
    dose = pd.to_numeric(dose, errors="coerce")
    value = pd.to_numeric(value, errors="coerce")
    known = dose.notna() & (dose > 0) & value.notna()
    positive = known & (value > 0)
    row: dict[str, object] = {
        "n": int(positive.sum()),
        "n_doses": int(dose[positive].nunique()),
        "n_excluded": int((known & ~positive).sum()),
    }
    notes = []
    if row["n_excluded"]:
        notes.append(f"{row['n_excluded']} subject(s) without quantifiable CAR T left out")
    fit = power_model(dose[positive].to_numpy(), value[positive].to_numpy())
    if not fit:
        row["conclusion"] = "too few doses"
        notes.append("needs at least 3 subjects over 2 or more doses")
        row["note"] = "; ".join(notes)
        return row
    ratio = float(dose[positive].max() / dose[positive].min())
    low, high = acceptance_interval(ratio)
    row.update(fit, dose_ratio=ratio, acceptance_low=low, acceptance_high=high)
    inside = low <= fit["slope_ci90_low"] and fit["slope_ci90_high"] <= high
    row["conclusion"] = "proportional" if inside else "not shown"
    row["note"] = "; ".join(notes)
    return row


def dose_proportionality(
    nca: pd.DataFrame,
    subjects: pd.DataFrame,
    parameters: tuple[str, ...] = ("cmax", "auc_0_28"),
) -> pd.DataFrame:
    """One row per analyte × parameter of ``nca`` (``pk/nca.tsv``), doses from ``subjects``."""
    doses = dict(
        zip(subjects["subject_id"].astype(str), pd.to_numeric(subjects["dose"]), strict=False)
    )
    rows = []
    for analyte, group in nca.groupby(nca["analyte"].astype(str), sort=True):
        dose = group["subject_id"].astype(str).map(doses)
        for parameter in parameters:
            if parameter not in group:
                continue
            row = {"analyte": analyte, "parameter": parameter}
            row.update(assess(dose, group[parameter]))
            rows.append(row)
    return pd.DataFrame(rows, columns=DOSE_PROPORTIONALITY_COLUMNS)
