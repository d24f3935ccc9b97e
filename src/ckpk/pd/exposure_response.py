"""Does CAR T exposure go with the clinical response? One row per endpoint × exposure.

The lab may drop a ``clinical.tsv`` (``subject_id``, ``endpoint``, ``day``, ``value``)
into the input folder: SRI-4 response yes/no at day 90 and 180, CRS or ICANS grade, DLT
yes/no. Each endpoint (at each day it was judged) is set against each exposure metric:
Cmax, AUC0–28 and persistence of every CAR T analyte, and the duration of B-cell aplasia.

- A **binary** endpoint (yes/no, true/false, 1/0, responder/non-responder) gives each
  group's n, geometric mean and median, and the Mann–Whitney U test (two-sided, exact for
  small groups without ties; Mann & Whitney 1947), a rank test that needs no normality
  and tolerates a non-responder's exposure of 0.
- A **graded** endpoint (whole numbers, e.g. CRS grade 0–4) gives n and median per grade
  and the trend across grades as Spearman's rank correlation with its p value.

With fewer than 2 subjects in a group (binary) or fewer than 3 subjects or 2 grades
(graded), the test is left empty and ``note`` says why.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ckpk.cells import text

YES_WORDS = frozenset({"yes", "y", "true", "1", "responder", "response", "r"})
NO_WORDS = frozenset({"no", "n", "false", "0", "non-responder", "nonresponder", "nr"})
CLINICAL_COLUMNS = ["subject_id", "endpoint", "day", "value"]
EXPOSURE_RESPONSE_COLUMNS = [
    "endpoint",
    "day",
    "kind",
    "exposure",
    "n",
    "groups",
    "n_no",
    "n_yes",
    "geo_mean_no",
    "geo_mean_yes",
    "median_no",
    "median_yes",
    "test",
    "statistic",
    "p_value",
    "note",
]


def endpoint_kind(values: pd.Series) -> str:
    """``binary``, ``graded`` or ``other`` from the values an endpoint takes."""
    words = {text(v).casefold() for v in values if text(v)}
    if words and words <= (YES_WORDS | NO_WORDS):
        return "binary"
    numbers = pd.to_numeric(pd.Series(list(words)), errors="coerce")
    if words and numbers.notna().all() and (numbers == numbers.round()).all():
        return "graded"
    return "other"


def _geo_mean(values: np.ndarray) -> float:
    positive = values[values > 0]
    return float(np.exp(np.log(positive).mean())) if positive.size else math.nan


def _binary_row(joined: pd.DataFrame) -> dict[str, object]:
    yes = joined["response"].map(lambda v: text(v).casefold() in YES_WORDS)
    groups = {"no": joined.loc[~yes, "exposure"].to_numpy(float)}
    groups["yes"] = joined.loc[yes, "exposure"].to_numpy(float)
    row: dict[str, object] = {"n": len(joined)}
    for name, values in groups.items():
        row[f"n_{name}"] = len(values)
        row[f"geo_mean_{name}"] = _geo_mean(values)
        row[f"median_{name}"] = float(np.median(values)) if len(values) else math.nan
    row["groups"] = "; ".join(f"{k}: n {len(v)}" for k, v in groups.items())
    if min(len(v) for v in groups.values()) < 2:
        row["note"] = "fewer than 2 subjects in a group: no test"
        return row
    result = stats.mannwhitneyu(groups["yes"], groups["no"], alternative="two-sided")
    row.update(test="Mann-Whitney U", statistic=float(result.statistic))
    row["p_value"] = float(result.pvalue)
    return row


def _graded_row(joined: pd.DataFrame) -> dict[str, object]:
    grade = pd.to_numeric(joined["response"].map(text))
    exposure = joined["exposure"].to_numpy(float)
    summary = [
        f"grade {g:g}: n {int((grade == g).sum())}, median {np.median(exposure[grade == g]):.4g}"
        for g in sorted(grade.unique())
    ]
    row: dict[str, object] = {"n": len(joined), "groups": "; ".join(summary)}
    if len(joined) < 3 or grade.nunique() < 2:
        row["note"] = "fewer than 3 subjects or 2 grades: no trend test"
        return row
    result = stats.spearmanr(grade.to_numpy(float), exposure)
    row.update(test="Spearman rank correlation", statistic=float(result.statistic))
    row["p_value"] = float(result.pvalue)
    return row


def exposure_table(
    nca: pd.DataFrame, b_cells: pd.DataFrame | None, partial_auc: str = "auc_0_28"
) -> pd.DataFrame:
    """Per subject, every exposure metric as a column ``<parameter> <analyte>``."""
    wide = pd.DataFrame(index=pd.Index([], name="subject_id", dtype=str))
    for parameter in ("cmax", partial_auc, "persistence_days"):
        if parameter not in nca:
            continue
        for analyte, group in nca.groupby(nca["analyte"].astype(str), sort=True):
            values = pd.to_numeric(group[parameter], errors="coerce")
            series = pd.Series(values.to_numpy(), index=group["subject_id"].astype(str))
            wide = wide.join(series.rename(f"{parameter} {analyte}"), how="outer")
    if b_cells is not None and len(b_cells):
        duration = pd.Series(
            pd.to_numeric(b_cells["aplasia_duration_days"], errors="coerce").to_numpy(),
            index=b_cells["subject_id"].astype(str),
        )
        wide = wide.join(duration.rename("aplasia_duration_days b_cells_per_ul"), how="outer")
    return wide


def exposure_response(clinical: pd.DataFrame, exposures: pd.DataFrame) -> pd.DataFrame:
    """One :data:`EXPOSURE_RESPONSE_COLUMNS` row per endpoint × day × exposure metric."""
    rows = []
    keyed = clinical.assign(day=pd.to_numeric(clinical["day"], errors="coerce"))
    for (endpoint, day), judged in keyed.groupby(["endpoint", "day"], sort=True, dropna=False):
        kind = endpoint_kind(judged["value"])
        responses = judged.drop_duplicates("subject_id").set_index(
            judged.drop_duplicates("subject_id")["subject_id"].astype(str)
        )["value"]
        for exposure in exposures.columns:
            joined = pd.DataFrame({"response": responses, "exposure": exposures[exposure]})
            joined = joined.dropna(subset=["response"])
            joined = joined[pd.to_numeric(joined["exposure"], errors="coerce").notna()]
            row: dict[str, object] = {
                "endpoint": endpoint,
                "day": day,
                "kind": kind,
                "exposure": exposure,
            }
            if kind == "binary":
                row.update(_binary_row(joined))
            elif kind == "graded":
                row.update(_graded_row(joined))
            else:
                row.update(n=len(joined), note="values neither yes/no nor whole grades")
            rows.append(row)
    return pd.DataFrame(rows, columns=EXPOSURE_RESPONSE_COLUMNS)
