"""Standard curves: one least-squares line per plate and target (docs/rules.md, qPCR; MIQE).

Absolute quantification fits ``Cq = slope · log10(quantity) + intercept`` by ordinary
least squares over every non-omitted standard well that amplified — individual wells,
not replicate means, as the instrument software does (Bustin et al. 2009, MIQE,
Clin Chem 55:611; Applied Biosystems "Standard Curve" analysis). The amplification
efficiency follows from the slope: ``E = 10^(-1/slope) - 1`` (a slope of -3.32 is 100 %).

``efficiency`` is reported in **percent** (97.5 means 97.5 %), as instruments print it,
and the acceptance limits are in percent too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ckpk.errors import ConfigError

CURVE_COLUMNS = [
    "plate",
    "target",
    "slope",
    "intercept",
    "r2",
    "efficiency",
    "n_points",
    "pass",
    "reason",
]
CURVE_EXTRA_COLUMNS = [
    "n_levels",  # distinct standard quantities in the fit
    "lowest_standard",  # copies/reaction of the lowest standard in the fit: the LLOQ
    "highest_standard",  # copies/reaction of the highest standard in the fit: the ULOQ
    "n_ntc",  # non-omitted NTC wells
    "n_ntc_amplified",  # of which with a Cq
    "ntc_wells",  # wells of the amplified NTCs, e.g. "D1 (Cq 35.20)"
]
CURVE_SORT_BY = ["plate", "target"]

DEFAULT_ACCEPTANCE: dict[str, float] = {
    "efficiency_min": 90.0,  # percent
    "efficiency_max": 110.0,  # percent
    "r2_min": 0.98,
    # Three levels are the fewest that can show a line is a line; MIQE asks for at
    # least five over the dynamic range, labs may configure that.
    "min_levels": 3,
}


def acceptance_limits(acceptance: Mapping[str, float] | None = None) -> dict[str, float]:
    """The defaults overridden by ``acceptance``; :class:`ConfigError` for a bad value."""
    limits = dict(DEFAULT_ACCEPTANCE)
    for key, value in (acceptance or {}).items():
        if key not in DEFAULT_ACCEPTANCE:
            continue  # other keys of the config block belong to other stages
        try:
            limits[key] = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"qpcr.acceptance.{key}: {value!r} is not a number") from None
    if limits["efficiency_min"] > limits["efficiency_max"]:
        raise ConfigError("qpcr.acceptance: efficiency_min is above efficiency_max")
    return limits


def fit_line(log_quantity: np.ndarray, cq: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, R²) of the OLS line of ``cq`` on ``log_quantity``."""
    fit = stats.linregress(log_quantity, cq)
    return float(fit.slope), float(fit.intercept), float(fit.rvalue**2)


def efficiency_pct(slope: float) -> float:
    """Amplification efficiency in percent from a standard-curve slope."""
    if not math.isfinite(slope) or slope == 0:
        return math.nan
    return (10.0 ** (-1.0 / slope) - 1.0) * 100.0


def standard_curves(
    wells: pd.DataFrame, acceptance: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per plate × target: the fitted curve and whether it passes acceptance.

    Columns :data:`CURVE_COLUMNS` then :data:`CURVE_EXTRA_COLUMNS`. ``efficiency`` is in
    percent. Every plate × target present in ``wells`` gets a row, also those without
    standards (``pass`` false, reason "no standard wells"). A curve fails when it has
    fewer than ``min_levels`` distinct quantities, an efficiency outside
    [``efficiency_min``, ``efficiency_max``] % or R² below ``r2_min``; ``reason`` lists
    every failed criterion, e.g. ``efficiency 82.1 % outside 90–110 %``.
    """
    limits = acceptance_limits(acceptance)
    rows = []
    for (plate, target), group in wells.groupby(["plate", "target"], sort=True):
        rows.append(_curve_row(str(plate), str(target), group, limits))
    table = pd.DataFrame(rows, columns=CURVE_COLUMNS + CURVE_EXTRA_COLUMNS)
    table["pass"] = table["pass"].astype(bool)
    return table


def _curve_row(plate: str, target: str, group: pd.DataFrame, limits: dict) -> dict:
    used = group[
        (group["task"] == "standard")
        & ~group["omit"]
        & group["cq"].notna()
        & (group["quantity"] > 0)
    ]
    ntc = group[(group["task"] == "ntc") & ~group["omit"]]
    amplified_ntc = ntc[ntc["cq"].notna()]
    row = {
        "plate": plate,
        "target": target,
        "slope": math.nan,
        "intercept": math.nan,
        "r2": math.nan,
        "efficiency": math.nan,
        "n_points": len(used),
        "pass": False,
        "reason": "",
        "n_levels": int(used["quantity"].nunique()),
        "lowest_standard": float(used["quantity"].min()) if len(used) else math.nan,
        "highest_standard": float(used["quantity"].max()) if len(used) else math.nan,
        "n_ntc": len(ntc),
        "n_ntc_amplified": len(amplified_ntc),
        "ntc_wells": ", ".join(
            f"{w} (Cq {c:.2f})"
            for w, c in zip(amplified_ntc["well"], amplified_ntc["cq"], strict=True)
        ),
    }
    standards = group[(group["task"] == "standard") & ~group["omit"]]
    if standards.empty:
        row["reason"] = "no standard wells"
        return row
    if used.empty:
        row["reason"] = "no standard well with both a Cq and a known quantity"
        return row
    reasons = []
    n_levels = row["n_levels"]
    if n_levels < 2:
        reasons.append(f"only {n_levels} standard level (need ≥ {limits['min_levels']:g})")
    else:
        slope, intercept, r2 = fit_line(
            np.log10(used["quantity"].to_numpy(float)), used["cq"].to_numpy(float)
        )
        efficiency = efficiency_pct(slope)
        row.update(slope=slope, intercept=intercept, r2=r2, efficiency=efficiency)
        if n_levels < limits["min_levels"]:
            reasons.append(f"only {n_levels} standard levels (need ≥ {limits['min_levels']:g})")
        if slope >= 0:
            reasons.append(f"slope {slope:.3f} is not negative")
        elif not limits["efficiency_min"] <= efficiency <= limits["efficiency_max"]:
            reasons.append(
                f"efficiency {efficiency:.1f} % outside "
                f"{limits['efficiency_min']:g}–{limits['efficiency_max']:g} %"
            )
        if not r2 >= limits["r2_min"]:
            reasons.append(f"R² {r2:.4f} below {limits['r2_min']:g}")
    row["pass"] = not reasons
    row["reason"] = "; ".join(reasons)
    return row
