"""CDISC SDTM-shaped PC (concentrations) and PP (PK parameters) datasets.

A sponsor's biostatistics team takes cellular kinetics as SDTM PC and PP domains (SDTMIG
3.3, §6.3.5.9 "Pharmacokinetics Concentrations" and §6.3.5.10 "Pharmacokinetics
Parameters"), and the FDA as SAS transport v5 files. Conventions followed here:

* ``STUDYID`` and ``USUBJID`` come from the config (``sdtm.study_id`` and the
  ``sdtm.usubjid`` template, ``{study_id}-{subject_id}`` by default).
* Study day ``--DY`` follows SDTM, which has no day 0: ckpk's day d (0 = the CAR T
  infusion, the reference start RFSTDTC) is ``d + 1`` on or after the infusion and ``d``
  before it. ``VISIT`` keeps ckpk's own day (``DAY 14``; ``SCREENING`` before day 0).
* A BLQ concentration: ``PCORRES``/``PCSTRESC`` ``<LLOQ`` written as ``<`` and the sample's
  LLOQ (``<2.45``), ``PCSTRESN`` empty, ``PCLLOQ`` the LLOQ (FDA Study Data Technical
  Conformance Guide, PC domain).
* PP test codes (``PPTESTCD``) and names (``PPTEST``) come from ckpk's parameter registry
  (:mod:`ckpk.pk.parameters`), which holds PKNCA's CDISC assignments; the partial AUC
  carries ``PPSTINT``/``PPENINT`` (``P0D``, ``P28D``). Only values the data determined
  are exported (an empty NCA value has no PP row).
* The concentration tests are sponsor-defined (no CDISC codelist covers CAR T cellular
  kinetics): :data:`ANALYTE_TESTS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ckpk.cells import booleans, number
from ckpk.pk.parameters import NCA_PARAMETERS, format_day

#: ckpk analyte → (PCTESTCD, PCTEST, PCCAT, unit, method); CDISC names: ≤ 8 and ≤ 40 chars.
ANALYTE_TESTS = {
    "car_per_ul": ("CARTCELL", "CAR+ T Cells", "CELLULAR KINETICS", "cells/uL", "FLOW CYTOMETRY"),
    "car_pct_cd3": (
        "CARTPCD3",
        "CAR+ T Cells/CD3+ T Cells",
        "CELLULAR KINETICS",
        "%",
        "FLOW CYTOMETRY",
    ),
    "car_copies_per_ug": (
        "CARTDNA",
        "CAR Transgene Copies per ug gDNA",
        "CELLULAR KINETICS",
        "copies/ug",
        "REAL-TIME QUANTITATIVE PCR",
    ),
    "b_cells_per_ul": ("BCELL", "B Cells", "PHARMACODYNAMICS", "cells/uL", "FLOW CYTOMETRY"),
}
SPECIMEN = "WHOLE BLOOD"
PC_COLUMNS = [
    "STUDYID", "DOMAIN", "USUBJID", "PCSEQ", "PCTESTCD", "PCTEST", "PCCAT", "PCORRES",
    "PCORRESU", "PCSTRESC", "PCSTRESN", "PCSTRESU", "PCSTAT", "PCREASND", "PCSPEC",
    "PCMETHOD", "PCLLOQ", "VISIT", "PCDY",
]  # fmt: skip
PP_COLUMNS = [
    "STUDYID", "DOMAIN", "USUBJID", "PPSEQ", "PPTESTCD", "PPTEST", "PPCAT", "PPORRES",
    "PPORRESU", "PPSTRESN", "PPSTRESU", "PPSPEC", "PPSTINT", "PPENINT",
]  # fmt: skip
#: Variable labels (SAS transport: ≤ 40 characters), as in the SDTMIG.
LABELS = {
    "STUDYID": "Study Identifier",
    "DOMAIN": "Domain Abbreviation",
    "USUBJID": "Unique Subject Identifier",
    "PCSEQ": "Sequence Number",
    "PCTESTCD": "Pharmacokinetic Test Short Name",
    "PCTEST": "Pharmacokinetic Test Name",
    "PCCAT": "Test Category",
    "PCORRES": "Result or Finding in Original Units",
    "PCORRESU": "Original Units",
    "PCSTRESC": "Character Result/Finding in Std Format",
    "PCSTRESN": "Numeric Result/Finding in Standard Units",
    "PCSTRESU": "Standard Units",
    "PCSTAT": "Completion Status",
    "PCREASND": "Reason Test Not Done",
    "PCSPEC": "Specimen Material Type",
    "PCMETHOD": "Method of Test or Examination",
    "PCLLOQ": "Lower Limit of Quantitation",
    "VISIT": "Visit Name",
    "PCDY": "Study Day of Specimen Collection",
    "PPSEQ": "Sequence Number",
    "PPTESTCD": "Parameter Short Name",
    "PPTEST": "Parameter Name",
    "PPCAT": "Parameter Category",
    "PPORRES": "Result or Finding in Original Units",
    "PPORRESU": "Original Units",
    "PPSTRESN": "Numeric Result/Finding in Standard Units",
    "PPSTRESU": "Standard Units",
    "PPSPEC": "Specimen Material Type",
    "PPSTINT": "Planned Start of Assessment Interval",
    "PPENINT": "Planned End of Assessment Interval",
}


@dataclass(frozen=True)
class Study:
    """What identifies the study and its subjects in SDTM (config ``sdtm``)."""

    study_id: str = "CKPK-DEMO"
    usubjid: str = "{study_id}-{subject_id}"

    def subject(self, subject_id: object) -> str:
        return self.usubjid.format(study_id=self.study_id, subject_id=subject_id)


def sdtm_day(day: float) -> int:
    """SDTM study day of ckpk's day (no day 0 in SDTM)."""
    return int(day) + 1 if day >= 0 else int(math.floor(day))


def _text(value: float) -> str:
    return f"{value:.6g}"


def _visit(day: float) -> str:
    return "SCREENING" if day < 0 else f"DAY {format_day(day)}"


def pc_domain(concentrations: pd.DataFrame, study: Study) -> pd.DataFrame:
    """The PC dataset of ``pk/concentrations.tsv``: one row per concentration."""
    rows = []
    table = concentrations.assign(blq=booleans(concentrations["blq"]))
    for record in table.to_dict("records"):
        testcd, test, category, unit, method = ANALYTE_TESTS.get(
            str(record["analyte"]), (str(record["analyte"]).upper()[:8], "", "", "", "")
        )
        value, lloq, day = number(record["value"]), number(record.get("lloq")), float(record["day"])
        if record["blq"]:
            result = f"<{_text(lloq)}" if math.isfinite(lloq) else "BLQ"
            numeric = math.nan
        else:
            result, numeric = _text(value), float(f"{value:.6g}")
        rows.append(
            {
                "STUDYID": study.study_id,
                "DOMAIN": "PC",
                "USUBJID": study.subject(record["subject_id"]),
                "PCTESTCD": testcd,
                "PCTEST": test,
                "PCCAT": category,
                "PCORRES": result,
                "PCORRESU": unit,
                "PCSTRESC": result,
                "PCSTRESN": numeric,
                "PCSTRESU": unit,
                "PCSTAT": "",
                "PCREASND": "",
                "PCSPEC": SPECIMEN,
                "PCMETHOD": method,
                "PCLLOQ": lloq,
                "VISIT": _visit(day),
                "PCDY": sdtm_day(day),
                "_day": day,
            }
        )
    return _sequence(pd.DataFrame(rows), "PCSEQ", ["PCTESTCD", "_day"], PC_COLUMNS)


def _sequence(table: pd.DataFrame, name: str, order: list[str], columns: list[str]) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.sort_values(["USUBJID", *order], kind="mergesort").reset_index(drop=True)
    table[name] = table.groupby("USUBJID").cumcount() + 1
    return table[columns]


def _pp_unit(kind_value: str, unit: str) -> str:
    return {"U": unit, "day": "day", "U·day": f"{unit}*day", "1/day": "1/day"}.get(kind_value, "")


def pp_domain(nca: pd.DataFrame, study: Study, end: float) -> pd.DataFrame:
    """The PP dataset of ``pk/nca.tsv``: one row per subject × analyte × parameter with a
    CDISC code and a value."""
    coded = [p for p in NCA_PARAMETERS if p.cdisc]
    rows = []
    for record in nca.to_dict("records"):
        analyte = str(record["analyte"])
        _, test, _, unit, _ = ANALYTE_TESTS.get(analyte, ("", analyte, "", "", ""))
        for parameter in coded:
            value = number(record.get(parameter.name(end)))
            if not math.isfinite(value):
                continue
            interval = parameter.cdisc_interval(end)
            rows.append(
                {
                    "STUDYID": study.study_id,
                    "DOMAIN": "PP",
                    "USUBJID": study.subject(record["subject_id"]),
                    "PPTESTCD": parameter.cdisc,
                    "PPTEST": parameter.cdisc_test,
                    "PPCAT": test or analyte,
                    "PPORRES": _text(value),
                    "PPORRESU": _pp_unit(parameter.unit.value, unit),
                    "PPSTRESN": value,
                    "PPSTRESU": _pp_unit(parameter.unit.value, unit),
                    "PPSPEC": SPECIMEN,
                    "PPSTINT": "P0D" if interval else "",
                    "PPENINT": f"P{format_day(end)}D" if interval else "",
                    "_order": coded.index(parameter),
                }
            )
    return _sequence(pd.DataFrame(rows), "PPSEQ", ["PPCAT", "_order"], PP_COLUMNS)


def write_xpt(table: pd.DataFrame, path: str, name: str) -> None:
    """SAS transport v5 (the FDA's format) through pyreadstat, with SDTM labels."""
    import pyreadstat

    pyreadstat.write_xport(
        table,
        path,
        file_format_version=5,
        table_name=name,
        column_labels=[LABELS.get(c, c)[:40] for c in table.columns],
    )
