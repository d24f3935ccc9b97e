"""How long CAR T cells persist, by dose level: a Kaplan–Meier table (``pk/persistence_km.tsv``).

Persistence is time-to-event data. For each subject × analyte the NCA gives
``persistence_days`` (Tlast, the last day with quantifiable cells; 0 for a
non-responder) and ``persistence_censored``: when the last sample is still quantifiable
the cells persisted *at least* that long, which a plain median of Tlast would treat as
a loss. The loss is dated at Tlast (the cells were last seen then; the true loss lies
before the next, BLQ, sample), the conventional right-censored reading of such data.

Per dose level × analyte (and pooled as ``all``), :func:`ckpk.survival.kaplan_meier`
gives the median persistence with its 95 % interval and the share still persisting at
months 3, 6 and 12 (S(t) at days 91, 183 and 365; empty where every subject still
followed was censored before that day, since S(t) is then unknown).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ckpk.cells import booleans
from ckpk.survival import kaplan_meier

MONTHS = (3, 6, 12)
PERSISTENCE_KM_COLUMNS = [
    "dose_level",
    "analyte",
    "n_subjects",
    "n_lost",
    "n_censored",
    "median_days",
    "median_ci_low_days",
    "median_ci_high_days",
    *[f"pct_persisting_month_{m}" for m in MONTHS],
]


def nominal_day(month: float) -> int:
    """The study day of a month after infusion, round(month · 365.25 / 12)."""
    return int(round(float(month) * 365.25 / 12.0))


def _km_row(group: pd.DataFrame, months: Sequence[float]) -> dict[str, object]:
    days = pd.to_numeric(group["persistence_days"], errors="coerce")
    usable = days.notna()
    censored = booleans(group["persistence_censored"])[usable]
    fit = kaplan_meier(days[usable].to_numpy(float), (~censored).to_numpy(bool))
    row: dict[str, object] = {
        "n_subjects": int(usable.sum()),
        "n_lost": fit.n_events,
        "n_censored": int(usable.sum()) - fit.n_events,
        "median_days": fit.median,
        "median_ci_low_days": fit.median_ci_low,
        "median_ci_high_days": fit.median_ci_high,
    }
    for month in months:
        share = fit.survival_at(nominal_day(month))
        row[f"pct_persisting_month_{month:g}"] = 100.0 * share if math.isfinite(share) else math.nan
    return row


def persistence_km(
    nca: pd.DataFrame,
    dose_levels: dict[str, str],
    pooled_label: str | None = "all",
    months: Sequence[float] = MONTHS,
) -> pd.DataFrame:
    """:data:`PERSISTENCE_KM_COLUMNS` per dose level × analyte of ``pk/nca.tsv``.

    ``dose_levels`` maps subject to dose level (subjects missing from it are
    ``unknown``); with ``pooled_label`` every analyte also gets a row over all levels.
    """
    from ckpk.pk.summary import UNKNOWN_DOSE, natural_key

    if nca.empty:
        return pd.DataFrame(columns=PERSISTENCE_KM_COLUMNS)
    table = nca.assign(
        dose_level=[dose_levels.get(str(s), UNKNOWN_DOSE) for s in nca["subject_id"]]
    )
    rows = []
    levels = sorted(table["dose_level"].unique(), key=natural_key)
    for level in levels + ([pooled_label] if pooled_label else []):
        chosen = table if level == pooled_label else table[table["dose_level"] == level]
        for analyte, group in chosen.groupby(chosen["analyte"].astype(str), sort=True):
            rows.append({"dose_level": level, "analyte": analyte, **_km_row(group, months)})
    return pd.DataFrame(rows, columns=PERSISTENCE_KM_COLUMNS)
