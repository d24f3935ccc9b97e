"""B-cell aplasia per subject: the pharmacodynamic readout next to the CAR T curve.

A CD19 CAR T product kills B cells; in autoimmune disease the aim is to wipe them out
and let them come back naive, so how deep, how soon and how long the aplasia lasts is
what the clinicians read beside CAR T expansion. From the ``b_cells_per_ul`` rows of a
concentrations table, per subject (docs/rules.md, "B-cell aplasia"):

- **baseline**: the last sample before day 0;
- **nadir**: the lowest sample after the infusion (day > 0); a BLQ sample ranks lowest
  and is reported as BLQ, its value empty;
- **onset**: the first day after the infusion with B cells below the threshold
  (``pd.b_cell_aplasia_below``, cells/µL); a BLQ sample counts as below;
- **reconstitution**: the first later day at or above the threshold;
- **duration**: reconstitution − onset; without reconstitution it runs to the last
  sample and ``censored`` is true (aplasia lasted at least that long).

What cannot be judged is empty, with the reason in ``flags``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ckpk.cells import booleans

ANALYTE = "b_cells_per_ul"
DEFAULT_APLASIA_BELOW = 1.0  # cells/µL; config pd.b_cell_aplasia_below

B_CELL_COLUMNS = [
    "subject_id",
    "dose_level",
    "baseline_day",
    "baseline_cells_per_ul",
    "nadir_day",
    "nadir_cells_per_ul",
    "nadir_blq",
    "aplasia_onset_day",
    "reconstitution_day",
    "aplasia_duration_days",
    "censored",
    "last_day",
    "n_samples",
    "threshold_cells_per_ul",
    "flags",
]


def _below(row: pd.Series, threshold: float) -> bool:
    return bool(row["blq"]) or (math.isfinite(row["value"]) and row["value"] < threshold)


def aplasia_profile(profile: pd.DataFrame, threshold: float = DEFAULT_APLASIA_BELOW) -> dict:
    """The aplasia row of one subject (columns ``day``, ``value``, ``blq``)."""
    table = profile.assign(
        day=pd.to_numeric(profile["day"], errors="coerce"),
        value=pd.to_numeric(profile["value"], errors="coerce"),
        blq=booleans(profile["blq"]),
    )
    table = table[table["day"].notna() & (table["blq"] | table["value"].notna())]
    table = table.sort_values("day", kind="mergesort")
    flags: list[str] = []
    row: dict[str, object] = {"n_samples": len(table), "threshold_cells_per_ul": threshold}

    before = table[table["day"] < 0]
    if before.empty:
        flags.append("no sample before day 0: no baseline")
    else:
        last = before.iloc[-1]
        row["baseline_day"] = last["day"]
        row["baseline_cells_per_ul"] = math.nan if last["blq"] else last["value"]
        if _below(last, threshold):
            flags.append("already below the threshold at baseline (earlier B-cell depletion?)")

    after = table[table["day"] > 0]
    if after.empty:
        flags.append("no sample after the infusion: aplasia cannot be judged")
        row["flags"] = "; ".join(flags)
        return row
    row["last_day"] = after["day"].iloc[-1]
    ranked = after.assign(rank=np.where(after["blq"], -np.inf, after["value"]))
    nadir = ranked.loc[ranked["rank"].idxmin()]
    row["nadir_day"] = nadir["day"]
    row["nadir_blq"] = bool(nadir["blq"])
    row["nadir_cells_per_ul"] = math.nan if nadir["blq"] else nadir["value"]

    below = [_below(r, threshold) for _, r in after.iterrows()]
    if not any(below):
        flags.append(f"never below {threshold:g} cells/uL after the infusion: no aplasia")
        row["flags"] = "; ".join(flags)
        return row
    onset_at = below.index(True)
    row["aplasia_onset_day"] = after["day"].iloc[onset_at]
    later = [i for i in range(onset_at + 1, len(below)) if not below[i]]
    if later:
        row["reconstitution_day"] = after["day"].iloc[later[0]]
        row["censored"] = False
        end = row["reconstitution_day"]
    else:
        row["censored"] = True
        end = row["last_day"]
        flags.append("no reconstitution by the last sample: duration is a lower bound")
    row["aplasia_duration_days"] = float(end) - float(row["aplasia_onset_day"])
    row["flags"] = "; ".join(flags)
    return row


def b_cell_table(
    concentrations: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    threshold: float = DEFAULT_APLASIA_BELOW,
) -> pd.DataFrame:
    """One :data:`B_CELL_COLUMNS` row per subject with ``b_cells_per_ul`` samples."""
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"the aplasia threshold must be a positive number, not {threshold!r}")
    b_cells = concentrations[concentrations["analyte"].astype(str) == ANALYTE]
    levels = {}
    if subjects is not None and len(subjects):
        levels = dict(zip(subjects["subject_id"].astype(str), subjects["dose_level"], strict=False))
    rows = []
    for subject, profile in b_cells.groupby(b_cells["subject_id"].astype(str), sort=True):
        row = {"subject_id": subject, "dose_level": levels.get(subject, math.nan)}
        row.update(aplasia_profile(profile, threshold))
        rows.append(row)
    table = pd.DataFrame(rows, columns=B_CELL_COLUMNS)
    for column in ("nadir_blq", "censored"):
        table[column] = table[column].astype("boolean")
    return table


APLASIA_BY_DOSE_COLUMNS = [
    "dose_level",
    "n_subjects",
    "n_aplasia",
    "n_reconstituted",
    "n_censored",
    "n_no_aplasia",
    "n_not_judged",
    "median_duration_days",
    "median_ci_low_days",
    "median_ci_high_days",
]


def aplasia_by_dose(table: pd.DataFrame) -> pd.DataFrame:
    """Kaplan–Meier summary of aplasia duration per dose level (and ``all``).

    Reconstitution is the event; aplasia still going at the last sample is censored.
    Subjects who were never aplastic, or could not be judged, are counted apart: the
    duration of an aplasia that did not happen is not 0 days of one.
    """
    from ckpk.survival import kaplan_meier

    rows = []
    levels = sorted(table["dose_level"].dropna().astype(str).unique())
    for level in levels + ["all"]:
        group = table if level == "all" else table[table["dose_level"].astype(str) == level]
        aplastic = group[group["aplasia_duration_days"].notna()]
        fit = kaplan_meier(
            aplastic["aplasia_duration_days"].astype(float),
            ~aplastic["censored"].astype(bool),
        )
        judged = group["n_samples"].notna() & group["last_day"].notna()
        rows.append(
            {
                "dose_level": level,
                "n_subjects": len(group),
                "n_aplasia": len(aplastic),
                "n_reconstituted": fit.n_events,
                "n_censored": len(aplastic) - fit.n_events,
                "n_no_aplasia": int((judged & group["aplasia_onset_day"].isna()).sum()),
                "n_not_judged": int((~judged).sum()),
                "median_duration_days": fit.median,
                "median_ci_low_days": fit.median_ci_low,
                "median_ci_high_days": fit.median_ci_high,
            }
        )
    return pd.DataFrame(rows, columns=APLASIA_BY_DOSE_COLUMNS)
