"""One analyte's observations as the population model reads them, and its dose covariate.

The observations follow the individual fit's rules
(:func:`ckpk.pk.likelihood.prepare_observations`): screening days left out, a reading of
0 or less not marked BLQ taken as BLQ, a BLQ reading censored at its LLOQ (one without an
LLOQ left out).

A subject enters the fit when it has at least one quantifiable reading. A subject whose
every reading is BLQ (a non-responder) is left out with the reason: the model describes
cells that expanded, and pulling such a subject into it would drag the typical peak and
widen its variability to cover a curve that never rose.

The dose covariate on Cmax (:func:`dose_covariate`):

* ``power``: every fitted subject has a positive numeric ``dose`` and there are at least
  two doses: x_i = ln(dose_i / reference), the reference the median dose (the lower of
  the two middle ones for an even count, so that it is a dose given); the effect is the
  exponent of Cmax ∝ dose^θ;
* ``levels``: otherwise, with at least two dose levels: one indicator per level but the
  reference (the first level in natural order, DL1 before DL2 before DL10); each effect is
  the log ratio of that level's typical Cmax to the reference level's;
* ``none``: a single dose or level (Cmax is then the typical peak of everyone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ckpk.pk.likelihood import prepare_observations
from ckpk.pk.summary import UNKNOWN_DOSE, natural_key

NON_RESPONDER = "no quantifiable reading (non-responder): not in the population fit"


@dataclass(frozen=True)
class DoseCovariate:
    """How dose enters log Cmax: ``kind`` (power, levels, none), the reference (a dose or a
    level), the effect names (``dose_exponent`` or ``cmax_ratio_<level>``) and the rows."""

    kind: str
    reference: str
    names: tuple[str, ...]
    rows: np.ndarray  # n_subjects × len(names)


@dataclass(frozen=True)
class PopulationData:
    """One analyte, every fitted subject's readings in one flat array (per observation)."""

    analyte: str
    unit: str
    subjects: tuple[str, ...]
    dose_level: tuple[str, ...]
    dose: np.ndarray
    subject_index: np.ndarray
    day: np.ndarray
    log_value: np.ndarray  # log reading, or log LLOQ where censored
    censored: np.ndarray
    covariate: DoseCovariate
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def n_obs(self) -> int:
        return int(self.day.size)

    @property
    def n_blq(self) -> int:
        return int(np.count_nonzero(self.censored))

    def median_peak(self) -> float:
        """Median over subjects of the highest quantifiable reading."""
        values = pd.Series(np.where(self.censored, np.nan, np.exp(self.log_value)))
        return float(values.groupby(self.subject_index).max().median())

    def counts(self, i: int) -> tuple[int, int]:
        """(observations, BLQ) of subject ``i``."""
        mine = self.subject_index == i
        return int(np.count_nonzero(mine)), int(np.count_nonzero(mine & self.censored))


def subject_doses(subjects: pd.DataFrame | None, ids: list[str]) -> tuple[list[str], np.ndarray]:
    """Dose level (``unknown`` when not in the sheet) and numeric dose (NaN) of ``ids``."""
    if subjects is None or subjects.empty:
        return [UNKNOWN_DOSE] * len(ids), np.full(len(ids), np.nan)
    sheet = subjects.assign(subject_id=subjects["subject_id"].astype(str)).set_index("subject_id")
    levels, doses = [], []
    for s in ids:
        level = sheet["dose_level"].get(s) if "dose_level" in sheet else None
        levels.append(UNKNOWN_DOSE if pd.isna(level) or str(level).strip() == "" else str(level))
        dose = pd.to_numeric(sheet["dose"].get(s), errors="coerce") if "dose" in sheet else None
        doses.append(float(dose) if dose is not None and pd.notna(dose) else np.nan)
    return levels, np.asarray(doses, dtype=float)


def dose_covariate(levels: list[str], doses: np.ndarray) -> DoseCovariate:
    """The covariate rows of the fitted subjects (rules in the module doc)."""
    n = len(levels)
    numeric = doses.size and bool(np.all(np.isfinite(doses) & (doses > 0)))
    if numeric and np.unique(doses).size >= 2:
        reference = float(np.sort(doses)[(n - 1) // 2])
        return DoseCovariate(
            "power", f"{reference:g}", ("dose_exponent",), np.log(doses / reference)[:, None]
        )
    distinct = sorted(set(levels), key=natural_key)
    if len(distinct) >= 2:
        others = distinct[1:]
        rows = np.array([[float(level == o) for o in others] for level in levels])
        return DoseCovariate(
            "levels", distinct[0], tuple(f"cmax_ratio_{o}" for o in others), rows.reshape(n, -1)
        )
    return DoseCovariate("none", distinct[0] if distinct else "", (), np.zeros((n, 0)))


def population_data(
    profiles: pd.DataFrame, subjects: pd.DataFrame | None, analyte: str
) -> PopulationData:
    """The fit's data for ``analyte`` of a validated concentrations table."""
    rows = profiles[profiles["analyte"].astype(str) == analyte]
    units = rows["unit"].dropna().astype(str) if "unit" in rows else pd.Series(dtype=str)
    kept: list[str] = []
    left_out: dict[str, str] = {}
    index, day, value, censored = [], [], [], []
    for subject, group in rows.groupby(rows["subject_id"].astype(str), sort=True):
        view, _, _ = prepare_observations(
            group["day"].to_numpy(float),
            pd.to_numeric(group["value"], errors="coerce").to_numpy(float),
            group["blq"].to_numpy(bool),
            pd.to_numeric(group["lloq"], errors="coerce").to_numpy(float),
            "censored",
        )
        if view.n == 0:
            left_out[subject] = "no observation on or after day 0: not in the population fit"
            continue
        if view.t_q.size == 0:
            left_out[subject] = NON_RESPONDER
            continue
        i = len(kept)
        kept.append(subject)
        t, y, is_blq = view.in_day_order()
        index.append(np.full(t.size, i))
        day.append(t)
        value.append(y)
        censored.append(is_blq)
    levels, doses = subject_doses(subjects, kept)

    def flat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    return PopulationData(
        analyte=analyte,
        unit=units.iloc[0] if len(units) else "",
        subjects=tuple(kept),
        dose_level=tuple(levels),
        dose=doses,
        subject_index=flat(index, int),
        day=flat(day, float),
        log_value=flat(value, float),
        censored=flat(censored, bool),
        covariate=dose_covariate(levels, doses),
        left_out=left_out,
    )
