"""The wells table every format reader returns (config/README.md ``qpcr/wells.tsv``).

One row per well and target (a multiplex well gives one row per dye). Columns, in this
order (:data:`WELL_COLUMNS`):

``plate``
    plate id: the file stem, or the id the caller passes to ``read_plate``.
``well``
    the well as the instrument wrote it (``A1``, ``A01``, ``P24``).
``sample``
    the sample name on the plate (empty for unnamed NTCs and standards).
``target``
    assay / target name; a file without one gets the caller's target or the dye.
``task``
    ``standard``, ``unknown`` or ``ntc`` (vendor words mapped by :func:`normalise_task`).
``cq``
    quantification cycle (Ct, Crt, Cq, Cp); NaN when the well did not amplify
    (``Undetermined``, ``NaN``, empty, RDML ``-1``, see each reader) — never 0 or 40.
``quantity``
    the known copies per reaction of a standard well; NaN for every other well.
``omit``
    ``True`` when the export marks the well omitted/excluded (``Omit``, ``Include``,
    RDML ``excl``); omitted wells are kept in the table but never used.

Extra columns after these (:data:`WELL_EXTRA_COLUMNS`): ``well_index`` (row-major well
number, the stable sort key: A1, A2 ... A12, B1), ``reporter`` (dye), ``task_raw`` (the
vendor's word), ``instrument_quantity`` (the quantity the instrument software computed
for unknowns, kept for cross-checks only), ``run`` (RDML run id), ``format`` and
``source_file`` and ``flag`` (why a well was left out as implausible: a Cq outside the
plausible range or with a grouping mark, a standard quantity that is not a positive
number; such a well is also marked ``omit``, so it is listed but never used).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .formats._tables import text

WELL_COLUMNS = ["plate", "well", "sample", "target", "task", "cq", "quantity", "omit"]
WELL_EXTRA_COLUMNS = [
    "well_index",
    "reporter",
    "task_raw",
    "instrument_quantity",
    "run",
    "format",
    "source_file",
    "flag",
]
# A Cq outside this range is not a cycle number a run can give (config qpcr.plausible_cq).
DEFAULT_CQ_RANGE = (0.0, 45.0)
WELL_SORT_BY = ["plate", "well_index", "target", "reporter"]
TASKS = ("standard", "unknown", "ntc")

WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")

# Vendor words for the three tasks. Applied Biosystems: STANDARD / UNKNOWN / NTC
# (older SDS: "Standard", "Unknown", "NTC"); Bio-Rad CFX: Std-01, Unkn-01, NTC,
# "Neg Ctrl", "NRT"; RDML sample types std / unkn / ntc / nac / ntp / nrt / pos / opt;
# LightCycler: Standard, Unknown, Negative Control.
_NTC_WORDS = {
    "ntc",
    "nac",
    "ntp",
    "nrt",
    "neg",
    "negative",
    "negative control",
    "neg ctrl",
    "neg control",
    "no template control",
    "non template control",
    "blank",
    "water",
    "h2o",
}


def normalise_task(raw: object) -> str:
    """``standard``, ``unknown`` or ``ntc`` for a vendor's task / content / type word.

    Positive controls (CFX ``Pos Ctrl``, RDML ``pos``) and anything unrecognised count
    as ``unknown``: they are measured like samples and, having no entry in the samples
    sheet, are reported as unmapped rather than silently dropped. ``task_raw`` keeps the
    vendor word.
    """
    text = " ".join(str(raw or "").replace("_", " ").split()).casefold()
    if not text:
        return "unknown"
    if text.startswith("std") or "standard" in text:
        return "standard"
    word = re.sub(r"[-\s]*\d+$", "", text)  # CFX numbers contents: "NTC-01", "Unkn-03"
    if word in _NTC_WORDS or word.startswith(("ntc", "neg")):
        return "ntc"
    return "unknown"


def parse_well(value: object) -> tuple[int, int] | None:
    """(row, column), 1-based, of an ``A1``/``A01``/``AA12`` well label, else None."""
    if value is None or isinstance(value, float | int | bool):
        return None
    match = WELL_RE.match(str(value))
    if not match:
        return None
    letters = match.group(1).upper()
    row = 0
    for char in letters:
        row = row * 26 + (ord(char) - ord("A") + 1)
    column = int(match.group(2))
    if column < 1:
        return None
    return row, column


def well_label(row: int, column: int) -> str:
    """``A1``-style label of a 1-based (row, column)."""
    letters = ""
    while row > 0:
        row, rest = divmod(row - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{column}"


def plate_columns(rows: pd.Series, columns: pd.Series) -> int:
    """Columns of the smallest standard plate (96, 384, 1536) holding every well."""
    max_row = int(rows.max()) if len(rows) and rows.notna().any() else 0
    max_col = int(columns.max()) if len(columns) and columns.notna().any() else 0
    for n_rows, n_cols in ((8, 12), (16, 24), (32, 48)):
        if max_row <= n_rows and max_col <= n_cols:
            return n_cols
    return max(max_col, 48)


def finish_wells(
    records: list[dict],
    plate: str,
    source_file: str,
    fmt: str,
    cq_range: tuple[float, float] = DEFAULT_CQ_RANGE,
) -> pd.DataFrame:
    """The wells table from reader records (dicts with the column names as keys).

    Adds ``plate``, ``format``, ``source_file`` and ``well_index``; fixes dtypes
    (text columns are ``str`` with ``""`` for missing, ``cq``/``quantity`` floats,
    ``omit`` bool); flags and omits implausible wells; sorts wells in plate order.
    """
    table = pd.DataFrame.from_records(records)
    for column in WELL_COLUMNS + WELL_EXTRA_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    table["plate"] = plate
    table["format"] = fmt
    table["source_file"] = source_file
    for column in ("well", "sample", "target", "reporter", "task_raw", "run", "flag"):
        # Excel stores sample names such as 5000018696625 as numbers: text() prints
        # whole floats without '.0'.
        table[column] = [text(v) for v in table[column]]
    table["task"] = [t if t in TASKS else normalise_task(t) for t in table["task"]]
    for column in ("cq", "quantity", "instrument_quantity"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    table["omit"] = table["omit"].fillna(False).astype(bool)
    _flag_implausible(table, cq_range)
    positions = [parse_well(w) for w in table["well"]]
    rows = pd.Series([p[0] if p else np.nan for p in positions], dtype=float)
    cols = pd.Series([p[1] if p else np.nan for p in positions], dtype=float)
    n_cols = plate_columns(rows, cols)
    index = (rows - 1) * n_cols + cols
    if "well_index" in table and table["well_index"].notna().any():
        index = index.fillna(pd.to_numeric(table["well_index"], errors="coerce"))
    table["well_index"] = index.astype("Int64")
    ordered = WELL_COLUMNS + WELL_EXTRA_COLUMNS
    table = table[ordered + [c for c in table.columns if c not in ordered]]
    table = table.sort_values(
        ["well_index", "target", "reporter"], kind="mergesort", na_position="last"
    )
    return table.reset_index(drop=True)


def _flag_implausible(table: pd.DataFrame, cq_range: tuple[float, float]) -> None:
    """Flag (and omit) wells whose Cq lies outside ``cq_range``; a reader's own flags
    (grouping marks, non-positive standard quantities) omit their wells too."""
    low, high = cq_range
    outside = table["cq"].notna() & ((table["cq"] < low) | (table["cq"] > high))
    for i in table.index[outside]:
        note = f"Cq {table.at[i, 'cq']:g} outside the plausible range {low:g}–{high:g}"
        table.at[i, "flag"] = "; ".join(x for x in (table.at[i, "flag"], note) if x)
    table.loc[table["flag"] != "", "omit"] = True
