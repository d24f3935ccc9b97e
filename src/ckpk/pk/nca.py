"""Non-compartmental analysis (NCA) with the rules and defaults of PKNCA 0.12.1 (docs/rules.md).

One profile is one subject × analyte: study day (day 0 = CAR T infusion) against level,
BLQ coded as 0, missing samples (NaN) dropped, screening days (< 0) left out. Each PK
parameter has its own function named after the PKNCA function it reproduces
(``pk.calc.cmax`` → :func:`calc_cmax`, ...), in a module per concept as PKNCA splits
them: :mod:`~ckpk.pk.cleaning` (``clean.conc.blq``), :mod:`~ckpk.pk.observed` (Cmax,
Tmax, Clast, Tlast), :mod:`~ckpk.pk.auc` (AUC rules), :mod:`~ckpk.pk.interpolation`,
:mod:`~ckpk.pk.partial_auc` (``aucint``) and :mod:`~ckpk.pk.half_life` (λz). This module
runs them: :func:`nca_profile` on one profile and :func:`nca_table` on a whole
concentrations table. The columns are declared in :mod:`ckpk.pk.parameters`. A parameter
a rule cannot give is NaN with a short reason in ``flags`` (PKNCA's "exclude"
attribute), never an exception.

PKNCA defaults reproduced: ``conc.blq = list(first="keep", middle="drop",
last="keep")``, ``conc.na = "drop"``, ``first.tmax = TRUE``, ``min.hl.points = 3``,
``adj.r.squared.factor = 1e-4``, ``allow.tmax.in.half.life = FALSE``, intervals
``[0, Inf]`` (cmax … aucinf.obs) and ``[0, END]`` (aucint.last), ``auc.method`` either
``"lin up/log down"`` or ``"linear"``.

Surprises in PKNCA 0.12.1 that these modules reproduce on purpose (each checked against
PKNCA's own output in ``tests/data/shared/reference/pk/profiles_pknca.csv`` where the reference
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
   R, so PKNCA reports NA; the partial AUC (``auc_0_28``) is then empty with that reason.
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

import numpy as np
import pandas as pd

from ckpk.errors import InputError
from ckpk.pk.auc import AUC_METHODS, Value, calc_auc, choose_interval_method, resolve_method
from ckpk.pk.cleaning import clean_conc_blq
from ckpk.pk.concentrations import validate_concentrations
from ckpk.pk.half_life import ADJ_R_SQUARED_FACTOR, MIN_HL_POINTS, HalfLife, calc_half_life
from ckpk.pk.interpolation import extrapolate_conc, interp_extrap_conc, interpolate_conc
from ckpk.pk.observed import calc_clast_obs, calc_cmax, calc_tlast, calc_tmax
from ckpk.pk.parameter_tables import column_help
from ckpk.pk.parameters import (
    DEFAULT_PARTIAL_AUC_END,
    NCA_PARAMETERS,
    empty_row,
    format_day,
    nca_columns,
    partial_auc_column,
    result_columns,
)
from ckpk.pk.partial_auc import calc_aucint, partial_auc

__all__ = [
    "ADJ_R_SQUARED_FACTOR",
    "AUC_METHODS",
    "MIN_HL_POINTS",
    "NCA_COLUMNS",
    "NCA_COLUMN_DOC",
    "HalfLife",
    "Value",
    "calc_auc",
    "calc_aucint",
    "calc_clast_obs",
    "calc_cmax",
    "calc_half_life",
    "calc_tlast",
    "calc_tmax",
    "choose_interval_method",
    "clean_conc_blq",
    "extrapolate_conc",
    "interp_extrap_conc",
    "interpolate_conc",
    "nca_profile",
    "nca_table",
]

#: ``pk/nca.tsv`` columns for the default partial AUC (``nca_columns(end)`` for another).
NCA_COLUMNS: list[str] = nca_columns()
NCA_COLUMN_DOC: dict[str, str] = column_help(NCA_PARAMETERS)

# The columns each reason leaves empty, named at the head of its flag (a test checks that
# each is a registry column).
ALL_BLQ_EMPTY = ("tmax", "tlast", "lambda_z", "half_life")
AUC_EMPTY = ("auclast", "aucall", "aucinf_obs")
HALF_LIFE_EMPTY = ("lambda_z", "half_life", "aucinf_obs")
# subject_id, dose_level, analyte, unit: what names a profile rather than results from it.
_LABELS = tuple(p.name() for p in NCA_PARAMETERS if p.label)


def _empty_result(method: str, end: float, n_obs: int = 0, n_blq: int = 0) -> dict:
    names = result_columns(NCA_PARAMETERS, end)
    return empty_row(names, n_obs=n_obs, n_blq=n_blq, flags="", method=method)


def _partial_auc_end(end: float) -> float:
    end = float(end)
    if not (end > 0 and math.isfinite(end)):
        raise InputError(f"the partial AUC end must be a positive day, not {end!r}")
    return end


def _usable_samples(day: Sequence[float] | np.ndarray, value: Sequence[float] | np.ndarray):
    """Days >= 0 with a finite level >= 0, sorted by day, and flags for what was dropped."""
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
        flags.append(f"day {format_day(x)}: negative or infinite value ignored")
    usable &= ~bad
    d, v = d[usable], v[usable]
    order = np.argsort(d, kind="mergesort")
    return d[order], v[order], flags


def _not_analysable(d: np.ndarray) -> str:
    """Why a profile gets no parameter at all (empty when it can be analysed)."""
    if d.size == 0:
        return "no samples on or after day 0"
    dup = np.unique(d[1:][np.diff(d) == 0])
    if dup.size:
        return f"duplicate day {', '.join(format_day(x) for x in dup)}: profile not analysed"
    return ""


def _observed_and_areas(row: dict, v: np.ndarray, d: np.ndarray, method: str) -> list[str]:
    """Cmax … Tlast, AUClast, AUCall, λz and AUCinf,obs into ``row``; returns the flags."""
    flags = []
    row["cmax"] = calc_cmax(v)
    row["tmax"] = calc_tmax(v, d)
    row["tlast"] = calc_tlast(v, d)
    row["clast"] = calc_clast_obs(v, d)
    # Persistence is time to loss of quantifiable cells: a last sample still quantifiable
    # only says "at least this long" (censored), and a non-responder persisted 0 days.
    row["persistence_days"] = row["tlast"]
    row["persistence_censored"] = bool(row["tlast"] == d.max())
    if math.isnan(row["tmax"]):
        flags.append(f"{', '.join(ALL_BLQ_EMPTY)}: all samples BLQ")
        row["persistence_days"] = 0.0
        flags.append("persistence_days: 0, no quantifiable sample (non-responder)")

    auclast = calc_auc(v, d, method, "AUClast")
    aucall = calc_auc(v, d, method, "AUCall")
    row["auclast"], row["aucall"] = auclast.value, aucall.value
    if auclast.reason:
        flags.append(f"{', '.join(AUC_EMPTY)}: {auclast.reason}")

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
        flags.append(f"{', '.join(HALF_LIFE_EMPTY)}: {hl.reason}")

    aucinf = calc_auc(v, d, method, "AUCinf", clast=row["clast"], lambda_z=hl.lambda_z)
    row["aucinf_obs"] = aucinf.value
    return flags


def nca_profile(
    day: Sequence[float] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    method: str = "lin-up/log-down",
    end: float = DEFAULT_PARTIAL_AUC_END,
) -> dict:
    """NCA of one subject × analyte profile (value 0 = BLQ, NaN = missing).

    Returns a dict with the result columns of ``nca_columns(end)`` (all but the labels
    subject_id … unit; ``flags`` a ``;``-joined string). Missing samples and days < 0
    are dropped first. Rules and the PKNCA surprises are in the module docstring; the
    partial AUC ``auc_0_<end>`` is ``aucint.last`` over [0, ``end``]. Never raises for a
    bad profile, only for a bad ``method``/``end``.
    """
    method = resolve_method(method)
    end = _partial_auc_end(end)
    d, v, flags = _usable_samples(day, value)
    row = _empty_result(method, end, int(d.size), int((v == 0).sum()))
    reason = _not_analysable(d)
    if reason:
        row["flags"] = "; ".join(flags + [reason])
        return row
    flags += _observed_and_areas(row, v, d, method)
    row[partial_auc_column(end)], aucint_flags = partial_auc(v, d, end, method)
    row["flags"] = "; ".join(flags + aucint_flags)
    return row


def _dose_levels(subjects: pd.DataFrame | None) -> dict[str, object]:
    dose_levels: dict[str, object] = {}
    if subjects is not None:
        missing = [c for c in ("subject_id", "dose_level") if c not in subjects.columns]
        if missing:
            raise InputError(f"subject sheet: missing column(s) {', '.join(missing)}")
        for sid, level in zip(subjects["subject_id"], subjects["dose_level"], strict=True):
            dose_levels.setdefault(str(sid).strip(), level)
    return dose_levels


def nca_table(
    concentrations: pd.DataFrame,
    method: str = "lin-up/log-down",
    end: float = DEFAULT_PARTIAL_AUC_END,
    subjects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """NCA of every subject × analyte of a concentrations table (``pk/nca.tsv``).

    ``concentrations`` has the columns of ``pk/concentrations.tsv`` (validated again
    here, so a raw table gives an :class:`InputError` naming the row). A ``blq`` row
    counts as 0 whatever ``value`` holds (empty, 0 or the reading below LLOQ). ``unit``
    is the profile's unit; ``dose_level`` comes from ``subjects`` (columns
    ``subject_id``, ``dose_level``) when given. The partial AUC column is named after
    ``end`` (:func:`ckpk.pk.parameters.nca_columns`). A bad ``method`` or ``end``
    raises :class:`InputError`; a bad profile yields a row with empty values and ``flags``.
    """
    method = resolve_method(method)
    end = _partial_auc_end(end)
    table = validate_concentrations(concentrations)
    dose_levels = _dose_levels(subjects)
    level = np.where(table["blq"].to_numpy(bool), 0.0, table["value"].to_numpy(float))
    table = table.assign(_level=level)
    rows = []
    for (sid, analyte), group in table.groupby(["subject_id", "analyte"], sort=True):
        units = [u for u in pd.unique(group["unit"].dropna().astype(str).str.strip()) if u]
        result = nca_profile(group["day"].to_numpy(float), group["_level"].to_numpy(), method, end)
        flags = [result["flags"]] if result["flags"] else []
        if len(units) > 1:
            result = _empty_result(method, end, result["n_obs"], result["n_blq"])
            flags = [f"several units ({', '.join(units)}): profile not analysed"]
        dose_level = dose_levels.get(sid, math.nan) if subjects is not None else math.nan
        if subjects is not None and sid not in dose_levels:
            flags.append("dose_level: subject not in the subject sheet")
        result["flags"] = "; ".join(flags)
        labels = (sid, dose_level, analyte, units[0] if units else math.nan)
        rows.append({**dict(zip(_LABELS, labels, strict=True)), **result})
    columns = nca_columns(end)
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows, columns=columns)
