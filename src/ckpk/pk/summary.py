"""Dose-level summaries of the PK parameters (config/README.md ``pk/summary_by_dose.tsv``).

Two tables a dose-escalation report needs:

* :func:`summary_by_dose` — per dose level × analyte × parameter, the descriptive
  statistics PK analysts quote for log-normally distributed parameters: geometric mean
  and geometric CV %, plus median, min and max.
* :func:`persistence_at_months` — per dose level × analyte × month, how many subjects
  still had quantifiable CAR T (the seed trial's own question: "share of subjects with
  quantifiable CAR T at months 3, 6 and 12").

Rules (stated once here and in the column docs)
-----------------------------------------------
* Geometric statistics use the positive values only (a log of 0 does not exist; a
  non-responder's Cmax of 0 counts in median/min/max but not in the geometric mean):
  ``geo_mean = exp(mean(ln x))``, ``geo_cv_pct = 100 · sqrt(exp(s²) − 1)`` with ``s`` the
  standard deviation of ``ln x`` (ddof = 1); empty with fewer than 1 (mean) or 2 (CV)
  positive values.
* ``n`` counts the values summarised by median/min/max (every finite value);
  ``n_geo`` the positive ones used by the geometric statistics.
* Tmax is conventionally summarised by median and range; its geometric statistics are
  still given (``note`` says so) because the column set is the same for every row.
* Only values the data could determine are summarised: an empty cell (a model
  parameter the fit could not estimate, a fit that did not converge, an NCA value a rule
  could not give) is left out and counted in ``n_not_estimable``.
* A subject missing from the subject sheet is summarised under dose level ``unknown``
  rather than silently left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ckpk.cells import booleans
from ckpk.pk.concentrations import validate_concentrations
from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, PARTIAL_AUC, find_parameter

SUMMARY_COLUMNS = [
    # config/README.md, in this order
    "dose_level",
    "analyte",
    "parameter",
    "n",
    "geo_mean",
    "geo_cv_pct",
    "median",
    "min",
    "max",
    # more
    "n_not_estimable",
    "n_geo",
    "unit",
    "source",
    "note",
]

SUMMARY_COLUMN_DOC: dict[str, str] = {
    "dose_level": "dose level from the subject sheet (unknown: subject not in the sheet)",
    "analyte": "analyte of the concentrations table",
    "parameter": "cmax, tmax, auc_0_28 (auc_0_END), persistence_days (NCA); doubling_time, "
    "contraction_half_life, persistence_half_life (model, estimable values only)",
    "n": "number of finite values summarised by median/min/max",
    "geo_mean": "geometric mean exp(mean(ln x)) over the n_geo positive values",
    "geo_cv_pct": "geometric CV % 100*sqrt(exp(s^2)-1), s = SD of ln x (ddof 1)",
    "median": "median of the n values",
    "min": "smallest of the n values",
    "max": "largest of the n values",
    "n_not_estimable": "subjects of the group whose value is empty (not estimable), left out",
    "n_geo": "number of positive values used by geo_mean and geo_cv_pct",
    "unit": "unit of the parameter",
    "source": "nca or model",
    "note": "remarks, e.g. the conventional summary of tmax",
}

# (source table, column) in report order; names and units come from the registry.
_SUMMARISED = (
    ("nca", "cmax"),
    ("nca", "tmax"),
    ("nca", PARTIAL_AUC),
    ("nca", "persistence_days"),
    ("model", "doubling_time"),
    ("model", "contraction_half_life"),
    ("model", "persistence_half_life"),
)


def summary_parameters(end: float = DEFAULT_PARTIAL_AUC_END) -> list[tuple[str, str, str]]:
    """(parameter, source table, unit template) in report order, the partial AUC named
    after ``end``."""
    parameters = [(source, find_parameter(source, column)) for source, column in _SUMMARISED]
    return [(p.name(end), source, p.unit.summary_unit) for source, p in parameters]


#: :func:`summary_parameters` for the default partial-AUC end.
SUMMARY_PARAMETERS: list[tuple[str, str, str]] = summary_parameters()

PERSISTENCE_COLUMNS = [
    "dose_level",
    "analyte",
    "month",
    "day_nominal",
    "window_start_day",
    "n_subjects",
    "n_evaluable",
    "n_quantifiable",
    "pct_quantifiable",
]

PERSISTENCE_COLUMN_DOC: dict[str, str] = {
    "dose_level": "dose level from the subject sheet (unknown: subject not in the sheet)",
    "analyte": "analyte of the concentrations table",
    "month": "month after infusion",
    "day_nominal": "nominal study day of the month, round(month * 365.25 / 12)",
    "window_start_day": "day_nominal * (1 - window); samples on or after it count",
    "n_subjects": "subjects of the dose level in the subject sheet (or seen in the data)",
    "n_evaluable": "subjects with any sample (quantifiable or BLQ) on or after window_start_day",
    "n_quantifiable": "evaluable subjects with a quantifiable sample on or after window_start_day",
    "pct_quantifiable": "100 * n_quantifiable / n_evaluable",
}

_TMAX_NOTE = "Tmax is conventionally summarised by median (min-max); geometric stats for reference"
UNKNOWN_DOSE = "unknown"


def geometric_stats(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """n, n_geo, geo_mean, geo_cv_pct, median, min, max of ``values`` (rules in the module doc)."""
    x = np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=float)
    x = x[np.isfinite(x)]
    positive = x[x > 0]
    logs = np.log(positive)
    geo_mean = float(np.exp(np.mean(logs))) if logs.size else math.nan
    if logs.size >= 2:
        s = float(np.std(logs, ddof=1))
        geo_cv = 100.0 * math.sqrt(math.expm1(s * s))
    else:
        geo_cv = math.nan
    return {
        "n": int(x.size),
        "n_geo": int(positive.size),
        "geo_mean": geo_mean,
        "geo_cv_pct": geo_cv,
        "median": float(np.median(x)) if x.size else math.nan,
        "min": float(np.min(x)) if x.size else math.nan,
        "max": float(np.max(x)) if x.size else math.nan,
    }


def natural_key(text: object) -> tuple:
    """Sort key that puts DL2 before DL10 and 3e6 before 1e7 where numbers are plain."""
    text = "" if text is None else str(text)
    try:
        return (0, float(text), "")
    except ValueError:
        pass
    parts = re.split(r"(\d+(?:\.\d+)?)", text)
    return (1, 0.0, tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)))


def dose_levels_of(subjects: pd.DataFrame | None) -> dict[str, str]:
    """Subject → dose level of the subject sheet (``unknown`` where it is empty)."""
    return _dose_map(subjects)


def _dose_map(subjects: pd.DataFrame | None) -> dict[str, str]:
    if subjects is None or subjects.empty or "subject_id" not in subjects.columns:
        return {}
    doses = subjects.get("dose_level", pd.Series([np.nan] * len(subjects), index=subjects.index))
    return {
        str(s).strip(): (UNKNOWN_DOSE if pd.isna(d) or str(d).strip() == "" else str(d).strip())
        for s, d in zip(subjects["subject_id"], doses, strict=True)
    }


def _with_dose(table: pd.DataFrame, doses: dict[str, str]) -> pd.DataFrame:
    table = table.copy()
    table["subject_id"] = table["subject_id"].astype(str).str.strip()
    own = table["dose_level"] if "dose_level" in table.columns else pd.Series(np.nan, table.index)
    resolved = []
    for subject, fallback in zip(table["subject_id"], own, strict=True):
        if subject in doses:
            resolved.append(doses[subject])
        elif pd.notna(fallback) and str(fallback).strip():
            resolved.append(str(fallback).strip())
        else:
            resolved.append(UNKNOWN_DOSE)
    table["dose_level"] = resolved
    return table


def _units(nca: pd.DataFrame, fits: pd.DataFrame) -> dict[str, str]:
    units: dict[str, str] = {}
    for table in (nca, fits):
        if {"analyte", "unit"} <= set(table.columns):
            for analyte, unit in zip(table["analyte"], table["unit"], strict=True):
                if pd.notna(unit) and str(unit).strip():
                    units.setdefault(str(analyte), str(unit))
    return units


def _by_source(
    nca: pd.DataFrame, fits: pd.DataFrame, doses: dict[str, str]
) -> dict[str, pd.DataFrame]:
    """Each source table with its dose levels (empty cells are not estimable values)."""
    prepared: dict[str, pd.DataFrame] = {}
    for name, table in {"nca": nca, "model": fits}.items():
        if table is None or table.empty or "subject_id" not in table.columns:
            prepared[name] = pd.DataFrame(columns=["subject_id", "analyte", "dose_level"])
            continue
        table = _with_dose(table, doses)
        if name == "model" and "converged" in table.columns:
            # A fit that did not converge supports none of its numbers (ckpk writes them
            # empty; a table from elsewhere might not).
            table = table.copy()
            failed = ~booleans(table["converged"])
            value_columns = [
                c
                for c in table.columns
                if c not in ("subject_id", "analyte", "dose_level", "converged")
            ]
            table.loc[failed, value_columns] = np.nan
        prepared[name] = table
    return prepared


def summary_by_dose(
    nca: pd.DataFrame,
    fits: pd.DataFrame,
    subjects: pd.DataFrame | None,
    pooled_label: str | None = None,
    end: float = DEFAULT_PARTIAL_AUC_END,
) -> pd.DataFrame:
    """Per dose level × analyte × parameter statistics (``pk/summary_by_dose.tsv``).

    ``nca`` has the columns of ``pk/nca.tsv``, ``fits`` those of ``pk/model_fits.tsv``
    (either may be empty), ``subjects`` the subject sheet (subject_id, dose_level). With
    ``pooled_label`` (e.g. ``"all"``) rows pooling every dose level are added under that
    label. ``end`` names the partial AUC read from ``nca`` (``auc_0_28``). Rows come
    sorted by dose level (natural order), analyte and parameter order of
    :func:`summary_parameters`.
    """
    units = _units(nca, fits)
    prepared = _by_source(nca, fits, _dose_map(subjects))
    groups = sorted(
        {
            (d, str(a))
            for t in prepared.values()
            for d, a in zip(t["dose_level"], t["analyte"], strict=True)
        },
        key=lambda g: (natural_key(g[0]), g[1]),
    )
    if pooled_label is not None:
        analytes = sorted({a for _, a in groups})
        groups += [(pooled_label, a) for a in analytes]
    rows = []
    for dose, analyte in groups:
        for parameter, source, unit_template in summary_parameters(end):
            table = prepared[source]
            selected = table["analyte"].astype(str) == analyte
            if dose != pooled_label:
                selected &= table["dose_level"] == dose
            values = table.loc[selected, parameter] if parameter in table.columns else []
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            rows.append(
                {
                    "dose_level": dose,
                    "analyte": analyte,
                    "parameter": parameter,
                    **geometric_stats(values),
                    "n_not_estimable": int(numbers.isna().sum()),
                    "unit": unit_template.format(unit=units.get(analyte, "")),
                    "source": source,
                    "note": _TMAX_NOTE if parameter == "tmax" else "",
                }
            )
    if not rows:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return pd.DataFrame(rows)[SUMMARY_COLUMNS]


def _roster(
    doses: dict[str, str], table: pd.DataFrame, pooled_label: str | None
) -> tuple[dict[str, set[str]], list[str]]:
    """Subjects of each dose level (subject sheet and data), and the levels in order."""
    roster: dict[str, set[str]] = {}
    for subject, dose in doses.items():
        roster.setdefault(dose, set()).add(subject)
    for subject, dose in zip(table["subject_id"], table["dose_level"], strict=True):
        roster.setdefault(dose, set()).add(subject)
    dose_levels = sorted(roster, key=natural_key)
    if pooled_label is not None:
        roster[pooled_label] = set().union(*roster.values()) if roster else set()
        dose_levels.append(pooled_label)
    return roster, dose_levels


def _counts(
    members: set[str], last_days: list[pd.Series], analyte: str, start: float
) -> dict[str, object]:
    """n_subjects … pct_quantifiable of one dose level, analyte and month; ``last_days``
    holds each subject's last sample day and last quantifiable sample day."""
    last_any, last_quant = last_days
    evaluable = [s for s in members if last_any.get((s, analyte), -1.0) >= start]
    positive = [s for s in evaluable if last_quant.get((s, analyte), -1.0) >= start]
    return {
        "n_subjects": len(members),
        "n_evaluable": len(evaluable),
        "n_quantifiable": len(positive),
        "pct_quantifiable": 100.0 * len(positive) / len(evaluable) if evaluable else math.nan,
    }


def persistence_at_months(
    concentrations: pd.DataFrame,
    subjects: pd.DataFrame | None,
    months: Sequence[float] = (3, 6, 12),
    window: float = 0.15,
    pooled_label: str | None = None,
) -> pd.DataFrame:
    """Share of subjects with quantifiable levels at months after infusion.

    Definition (chosen to match ``persistence_days`` = Tlast of the NCA, docs/rules.md): for
    month m the nominal day is ``D = round(m · 365.25 / 12)`` (91, 183, 365) and a sample
    counts from ``D · (1 − window)`` on (default window 15 %: days 77, 155, 310), which
    allows for visits made early. A subject is *evaluable* at month m when it has any
    sample (quantifiable or BLQ) on or after that day, i.e. was followed that long;
    *quantifiable* when one of those samples is quantifiable. Hence a subject whose month-3
    sample is BLQ but month-6 sample quantifiable counts as persisting at month 3 (CAR T
    intermittently below the LLOQ are still present). Screening samples (day < 0) and
    missing samples (no value, not BLQ) never count.

    Returns the columns of :data:`PERSISTENCE_COLUMNS`, one row per dose level ×
    analyte × month (with ``pooled_label``, also pooled over dose levels).
    """
    table = validate_concentrations(concentrations)
    doses = _dose_map(subjects)
    table = _with_dose(table.drop(columns=["dose_level"], errors="ignore"), doses)
    observed = table["blq"] | (table["value"].notna())
    table = table[observed & (table["day"] >= 0)]
    quantifiable = ~table["blq"] & (table["value"] > 0)
    table = table.assign(quantifiable=quantifiable)

    roster, dose_levels = _roster(doses, table, pooled_label)
    analytes = sorted(table["analyte"].astype(str).unique())

    last_any = table.groupby(["subject_id", "analyte"])["day"].max()
    last_quant = table[table["quantifiable"]].groupby(["subject_id", "analyte"])["day"].max()
    rows = []
    for dose in dose_levels:
        members = roster[dose]
        for analyte in analytes:
            for month in months:
                nominal = int(round(float(month) * 365.25 / 12.0))
                start = nominal * (1.0 - window)
                rows.append(
                    {
                        "dose_level": dose,
                        "analyte": analyte,
                        "month": month,
                        "day_nominal": nominal,
                        "window_start_day": start,
                        **_counts(members, [last_any, last_quant], analyte, start),
                    }
                )
    if not rows:
        return pd.DataFrame(columns=PERSISTENCE_COLUMNS)
    return pd.DataFrame(rows)[PERSISTENCE_COLUMNS]
