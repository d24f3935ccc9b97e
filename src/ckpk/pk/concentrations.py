"""The long concentrations table (``pk/concentrations.tsv``, config/README.md).

One row per subject × analyte × study day. It is the hand-over point between the
assay stages (flow, qPCR) and the PK stages (NCA, model fit), and the input format of
``ckpk nca`` and ``ckpk fit``, so it is validated here with messages naming the row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.errors import InputError

CONCENTRATION_COLUMNS = [
    "subject_id",
    "analyte",
    "day",
    "value",
    "unit",
    "blq",
    "lloq",
    "source",
]
REQUIRED_COLUMNS = ["subject_id", "analyte", "day", "value", "blq"]

# Analytes and their units (config/README.md).
ANALYTE_UNITS = {
    "car_per_ul": "cells/uL",
    "car_pct_cd3": "% of CD3+",
    "car_copies_per_ug": "copies/ug gDNA",
    "b_cells_per_ul": "cells/uL",
}

# Analytes that measure CAR T cells: NCA and the kinetic model describe these. B cells
# per µL are in the table to follow B-cell aplasia, not as a PK profile.
CAR_T_ANALYTES = ("car_per_ul", "car_pct_cd3", "car_copies_per_ug")

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _parse_blq(value: object, row_label: str, source: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"{source}: {row_label}: blq must be true or false, not {value!r}")


def validate_concentrations(table: pd.DataFrame, source: str = "concentrations") -> pd.DataFrame:
    """Check and normalise a concentrations table.

    Returns a copy with ``day``, ``value`` and ``lloq`` numeric and ``blq`` boolean.
    Raises :class:`InputError` naming the row (1-based data row, as a spreadsheet shows
    it after the header) for a missing column, a non-numeric day or value, or a
    duplicate subject/analyte/day.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)}; a concentrations table needs "
            f"{', '.join(REQUIRED_COLUMNS)} (and optionally unit, lloq, source)"
        )
    table = table.copy().reset_index(drop=True)
    for column in ("unit", "lloq", "source"):
        if column not in table.columns:
            table[column] = np.nan
    table["subject_id"] = table["subject_id"].astype(str).str.strip()
    table["analyte"] = table["analyte"].astype(str).str.strip()
    for column in ("day", "value", "lloq"):
        raw = table[column]
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if column == "day":
            bad |= numbers.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{source}: row {i + 2} (subject {table.at[i, 'subject_id']}): "
                f"{column} must be a number, not {raw.iloc[i]!r}"
            )
        table[column] = numbers.astype(float)
    table["blq"] = [
        _parse_blq(v, f"row {i + 2} (subject {s})", source)
        for i, (v, s) in enumerate(zip(table["blq"], table["subject_id"], strict=True))
    ]
    duplicated = table.duplicated(["subject_id", "analyte", "day"], keep="first")
    if duplicated.any():
        i = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise InputError(
            f"{source}: row {i + 2}: duplicate subject/analyte/day "
            f"({table.at[i, 'subject_id']}, {table.at[i, 'analyte']}, day {table.at[i, 'day']:g})"
        )
    return table


def read_concentrations(path: str | Path) -> pd.DataFrame:
    """Read and validate a concentrations TSV (the ``ckpk nca`` / ``ckpk fit`` input)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty (expected a concentrations table)") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a tab-separated table ({exc})") from exc
    return validate_concentrations(table, source=str(path))


def _flow_rows(car_t: pd.DataFrame, known: set[str]) -> list[dict]:
    rows = []
    for record in car_t.to_dict("records"):
        subject = str(record.get("subject_id") or "")
        if subject not in known:
            continue
        blq = bool(record.get("blq")) if pd.notna(record.get("blq")) else False
        lloq_ul = record.get("lloq_per_ul")
        readings = [
            ("car_per_ul", record.get("car_per_ul"), lloq_ul, blq),
            ("car_pct_cd3", record.get("car_pct_cd3"), record.get("lloq_pct_cd3"), blq),
        ]
        b_cells = record.get("b_cells_per_ul")
        if pd.notna(b_cells) and pd.notna(lloq_ul):
            # B cells are counted with the same events-to-µL factor as CAR T cells, so
            # the same event LLOQ applies to them.
            readings.append(("b_cells_per_ul", b_cells, lloq_ul, bool(b_cells < lloq_ul)))
        for analyte, value, lloq, is_blq in readings:
            if pd.isna(value):
                continue  # not measurable for this file (no bead or CBC count, no CD3+)
            rows.append(
                {
                    "subject_id": subject,
                    "analyte": analyte,
                    "day": float(record["day"]),
                    "value": float(value),
                    "unit": ANALYTE_UNITS[analyte],
                    "blq": is_blq,
                    "lloq": float(lloq) if pd.notna(lloq) else np.nan,
                    "source": str(record["file"]),
                }
            )
    return rows


def combine_repeats(copies: pd.Series, blq: pd.Series) -> tuple[float, bool]:
    """One concentration from a sample's repeats on several plates: (value, blq).

    The median of every repeat, a BLQ repeat ranking below all quantifiable ones; when
    the median is, or averages in, a BLQ repeat the sample is BLQ. So a BLQ repeat is
    never dropped: one quantifiable repeat out of two does not overrule a BLQ one, two
    out of three do (averaging only the quantifiable repeats, as before, biased high).
    """
    is_blq = blq.astype(bool).to_numpy()
    values = np.sort(copies.astype(float).to_numpy()[~is_blq])
    ranked = [(True, math.nan)] * int(is_blq.sum()) + [(False, v) for v in values]
    n = len(ranked)
    middle = ranked[(n - 1) // 2 : n // 2 + 1]
    if any(b for b, _ in middle):
        return math.nan, True
    return float(np.mean([v for _, v in middle])), False


def _qpcr_rows(transgene: pd.DataFrame, known: set[str], plate_files: dict[str, str]) -> list[dict]:
    usable = transgene[transgene["subject_id"].astype(str).isin(known) & transgene["blq"].notna()]
    rows = []
    for (subject, day), repeats in usable.groupby(["subject_id", "day"], sort=True):
        sources = "; ".join(sorted({plate_files.get(p, str(p)) for p in repeats["plate"]}))
        lloq = repeats["lloq_copies_per_ug"].astype(float).min()
        value, blq = combine_repeats(repeats["copies_per_ug"], repeats["blq"])
        rows.append(
            {
                "subject_id": str(subject),
                "analyte": "car_copies_per_ug",
                "day": float(day),
                "value": value,
                "unit": ANALYTE_UNITS["car_copies_per_ug"],
                "blq": blq,
                "lloq": lloq,
                "source": sources,
            }
        )
    return rows


def build_concentrations(
    car_t: pd.DataFrame | None,
    transgene: pd.DataFrame | None,
    subjects: pd.DataFrame,
    plate_files: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The long table from the flow (``flow/car_t.tsv``) and qPCR (``qpcr/transgene.tsv``).

    Analytes: ``car_per_ul``, ``car_pct_cd3``, ``b_cells_per_ul`` (flow) and
    ``car_copies_per_ug`` (qPCR). BLQ rows keep their reading below the LLOQ in
    ``value`` where there is one; ``lloq`` is that sample's LLOQ in the analyte's unit
    (flow: ``flow.lloq_events`` scaled like the reading; qPCR: the lowest standard per
    µg of the DNA loaded). Rows of subjects not in ``subjects`` and qPCR samples whose
    curve failed are left out (they are flagged in their stage's table). Screening days
    (< 0) stay in; NCA leaves them out.
    """
    known = set(subjects["subject_id"].astype(str))
    rows: list[dict] = []
    if car_t is not None and len(car_t):
        rows += _flow_rows(car_t, known)
    if transgene is not None and len(transgene):
        rows += _qpcr_rows(transgene, known, plate_files or {})
    table = pd.DataFrame(rows, columns=CONCENTRATION_COLUMNS)
    table = table.sort_values(["subject_id", "analyte", "day"], kind="mergesort")
    return table.reset_index(drop=True)


def car_t_profiles(concentrations: pd.DataFrame) -> pd.DataFrame:
    """Rows of the CAR T analytes only (:data:`CAR_T_ANALYTES`), for NCA and model fits."""
    return concentrations[concentrations["analyte"].isin(CAR_T_ANALYTES)].reset_index(drop=True)
