"""One row per subject: the table an analyst opens first (``pk/subjects.tsv``).

It gathers what the other tables hold per subject × analyte into one wide row: dose,
then for each CAR T analyte Cmax, Tmax, AUC0–28, persistence (and whether it is censored)
and the model's half-lives, each followed by the population fit's estimate
(``<parameter>_pop``, the posterior median of ``pk/population_subjects.tsv``) when there is
one, then B-cell aplasia, then every clinical endpoint. Columns are
``<parameter>__<analyte>`` (``cmax__car_copies_per_ug``), one block per analyte; clinical
endpoints are ``<endpoint> day <day>``.
"""

from __future__ import annotations

import math

import pandas as pd

from ckpk.cells import number, text

NCA_PARAMETERS = ("cmax", "tmax", "auc_0_28", "persistence_days", "persistence_censored")
MODEL_PARAMETERS = ("contraction_half_life", "persistence_half_life")
#: Population-fit estimates shown beside their individual counterpart, as ``<name>_pop``.
POPULATION_PARAMETERS = ("cmax", "tmax", "auc_0_28", *MODEL_PARAMETERS)
B_CELL_PARAMETERS = (
    ("aplasia_onset_day", "aplasia_onset_day"),
    ("aplasia_duration_days", "aplasia_duration_days"),
    ("censored", "aplasia_censored"),
)
SUBJECT_COLUMNS_FIRST = ["subject_id", "dose_level", "dose"]


def _wide(table: pd.DataFrame, parameters: tuple[str, ...], suffix: str = "") -> pd.DataFrame:
    out = pd.DataFrame(index=pd.Index([], dtype=str, name="subject_id"))
    if table is None or table.empty:
        return out
    for analyte, group in table.groupby(table["analyte"].astype(str), sort=True):
        indexed = group.set_index(group["subject_id"].astype(str))
        for parameter in parameters:
            if parameter in indexed:
                name = f"{parameter}{suffix}__{analyte}"
                out = out.join(indexed[parameter].rename(name), how="outer")
    return out


def _clinical_columns(clinical: pd.DataFrame | None) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.Index([], dtype=str, name="subject_id"))
    if clinical is None or clinical.empty:
        return out
    for (endpoint, day), group in clinical.groupby(["endpoint", "day"], sort=True):
        when = number(day)
        label = f"{endpoint} day {when:g}" if math.isfinite(when) else str(endpoint)
        values = (
            group.drop_duplicates("subject_id")
            .set_index(group.drop_duplicates("subject_id")["subject_id"].astype(str))["value"]
            .map(text)
        )
        out = out.join(values.rename(label), how="outer")
    return out


def subject_summary(
    subjects: pd.DataFrame,
    nca: pd.DataFrame,
    fits: pd.DataFrame | None = None,
    b_cells: pd.DataFrame | None = None,
    clinical: pd.DataFrame | None = None,
    partial_auc: str = "auc_0_28",
    population: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The wide per-subject table; one row for every subject of ``subjects``
    (``population``: ``pk/population_subjects.tsv``, optional)."""
    parameters = tuple(partial_auc if p == "auc_0_28" else p for p in NCA_PARAMETERS)
    pop_parameters = tuple(partial_auc if p == "auc_0_28" else p for p in POPULATION_PARAMETERS)
    base = subjects.assign(subject_id=subjects["subject_id"].astype(str)).set_index("subject_id")
    table = base[["dose_level", "dose"]]
    table = table.join(_wide(nca, parameters), how="left")
    if fits is not None:
        table = table.join(_wide(fits, MODEL_PARAMETERS), how="left")
    if population is not None:
        table = table.join(_wide(population, pop_parameters, "_pop"), how="left")
    if b_cells is not None and len(b_cells):
        aplasia = b_cells.set_index(b_cells["subject_id"].astype(str))
        for source, name in B_CELL_PARAMETERS:
            table = table.join(aplasia[source].rename(name), how="left")
    table = table.join(_clinical_columns(clinical), how="left")
    per_analyte = [c for c in table.columns if "__" in c]
    order = parameters + MODEL_PARAMETERS

    def rank(column: str) -> tuple[str, int, int]:
        name, analyte = column.split("__", 1)
        base = name.removesuffix("_pop")
        return analyte, order.index(base), int(name != base)

    per_analyte.sort(key=rank)
    other = [c for c in table.columns if c not in per_analyte]
    table = table[other[:2] + per_analyte + other[2:]]
    return table.reset_index().sort_values("subject_id", kind="mergesort").reset_index(drop=True)
