"""Shared reading of Applied Biosystems "Results" tables.

QuantStudio 3/5/6/7 Flex and ViiA 7 (QuantStudio Real-Time PCR software), StepOne /
StepOnePlus and 7500 (SDS v2) and Design & Analysis all export one row per well and
target with the same ideas under slightly different names: ``Well Position`` or
``Well``, ``Sample Name`` or ``Sample``, ``CT`` / ``CRT`` / ``Cт`` / ``Cq``, ``Task``
(``UNKNOWN``, ``STANDARD``, ``NTC``), ``Quantity``, ``Omit``. The same table appears as
a ``[Results]`` block of a text file, a ``Results`` sheet of ``.xls``/``.xlsx`` and a
plain CSV. Each format module declares its column names; this module does the reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..wells import normalise_task, parse_well
from ._document import Document
from ._tables import (
    body,
    cell,
    cq_reading,
    detect_decimal,
    find_header,
    flag,
    norm,
    quantity_reading,
    text,
)

# Sheets/sections that hold per-cycle data, never the results table: skipping them
# saves reading tens of thousands of rows from Design & Analysis workbooks.
BULK_TABLE_WORDS = ("amplification", "multicomponent", "raw data", "melt")

CQ_NAMES = ("ct", "crt", "cq", "c t")  # "Cт" (Cyrillic) normalises to "ct"


def candidate_tables(doc: Document) -> list[str]:
    """Table names worth searching for a results header, results-like names first."""
    names = [n for n in doc.table_names if not any(w in norm(n) for w in BULK_TABLE_WORDS)]
    return sorted(names, key=lambda n: 0 if "result" in norm(n) else 1)


def find_results(
    doc: Document,
    columns: Mapping[str, Sequence[str]],
    required: Sequence[str],
    forbidden: Sequence[str] = (),
    tables: Sequence[str] | None = None,
) -> tuple[str, int, dict[str, int]] | None:
    """(table, header row, column positions) of the first matching results table."""
    for name in candidate_tables(doc) if tables is None else tables:
        found = find_header(doc.rows(name), columns, required, forbidden)
        if found is not None:
            return name, found[0], found[1]
    return None


def result_rows(
    doc: Document, rows: list[list], columns: dict[str, int]
) -> tuple[str, list[tuple[list, str, str]]]:
    """The export's decimal mark and ``(row, well, where)`` for each well row.

    Rows whose well cell is not an ``A1``-style position (trailer rows, totals) are
    skipped; ``where`` names file and well for error messages. Every reader's loop over
    its results table starts here.
    """
    decimal = detect_decimal(cell(r, columns, "cq") for r in rows)
    wells = []
    for row in rows:
        well = text(cell(row, columns, "well"))
        if parse_well(well) is not None:
            wells.append((row, well, f"{doc.name}: well {well}"))
    return decimal, wells


def read_results(doc: Document, table: str, header: int, columns: dict[str, int]) -> list[dict]:
    """Well records of one Applied Biosystems results table.

    Rows whose well cell is not an ``A1``-style position (trailer rows such as
    ``Analysis Type``/``Endogenous Control`` after a StepOne table) are skipped, as are
    rows without target, sample, task and Cq (unused wells).
    """
    decimal, wells = result_rows(doc, body(doc.rows(table), header), columns)
    records: list[dict] = []
    for row, well, where in wells:
        raw_cq = cell(row, columns, "cq")
        target = text(cell(row, columns, "target"))
        sample = text(cell(row, columns, "sample"))
        task_raw = text(cell(row, columns, "task"))
        if not (target or sample or task_raw or text(raw_cq)):
            continue
        task = normalise_task(task_raw)
        quantity, quantity_problem = quantity_reading(
            cell(row, columns, "quantity"), decimal, where
        )
        cq, cq_problem = cq_reading(raw_cq, decimal, where)
        problems = [cq_problem] + ([quantity_problem] if task == "standard" else [])
        records.append(
            {
                "well": well,
                "sample": sample,
                "target": target,
                "task": task,
                "task_raw": task_raw,
                "cq": cq,
                "quantity": quantity if task == "standard" else math.nan,
                "instrument_quantity": quantity if task != "standard" else math.nan,
                "omit": flag(cell(row, columns, "omit")),
                "reporter": text(cell(row, columns, "reporter")),
                "flag": "; ".join(p for p in problems if p),
            }
        )
    return records


SETUP_COLUMNS = {
    "well": ("well position", "well"),
    "sample": ("sample name",),
    "target": ("target name", "detector name", "detector"),
    "task": ("task",),
}


def diagnose(doc: Document) -> str | None:
    """Why an Applied Biosystems export that holds no results table cannot be used.

    A 7500 / StepOne / QuantStudio export saved with only the "Sample Setup" (plate
    layout) has wells, samples and targets but no Ct: it is recognised and rejected
    with that reason instead of "unknown format".
    """
    if doc.kind == "rdml":
        return None
    setup = find_results(doc, SETUP_COLUMNS, ("well", "sample", "target", "task"))
    has_setup_table = doc.find_table_name("Sample Setup") is not None
    if setup is None and not has_setup_table:
        return None
    if find_results(doc, {"cq": CQ_NAMES}, ("cq",)) is not None:
        return None
    sheets = ", ".join(f"'{n}'" for n in doc.table_names if n) or "one table"
    return (
        "Applied Biosystems export with the plate layout only (it holds "
        f"{sheets}) and no Results table with Ct values; export again from the "
        "instrument software with 'Results' selected"
    )
