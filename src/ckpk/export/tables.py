"""The results for people who do not read TSV: one Excel workbook, and Parquet copies.

* ``ckpk_results.xlsx`` (openpyxl) has one sheet per main table — subjects, NCA, model
  fits, population fit, dose summary, B cells, ledger — with each header carrying its
  unit where the column has one (``tmax [day]``; ``[U]`` is the analyte's unit, given in
  the ``unit`` column), the header row frozen and an autofilter, so a clinician can sort
  and filter.
* ``parquet/<table>.parquet`` (pyarrow) is every results table with its types kept
  (numbers, true/false, text), for analysts who load them into R, Python or a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ckpk.pk.parameters import MODEL_PARAMETERS, NCA_PARAMETERS, UnitKind
from ckpk.tables import read_tsv

#: Workbook sheet → the results table it shows (path relative to results_dir).
WORKBOOK_SHEETS = {
    "subjects": "pk/subjects.tsv",
    "NCA": "pk/nca.tsv",
    "model fits": "pk/model_fits.tsv",
    "population fit": "pk/population_fit.tsv",
    "dose summary": "pk/summary_by_dose.tsv",
    "B cells": "pd/b_cells.tsv",
    "ledger": "ledger.tsv",
}
_NO_UNIT = {UnitKind.TEXT, UnitKind.BOOLEAN, UnitKind.COUNT, UnitKind.UNITLESS}
_UNIT_SUFFIXES = {"_per_ul": "cells/uL", "_days": "day", "_day": "day", "_pct": "%"}


def column_units(end: float) -> dict[str, str]:
    """Column → unit text, from the registry (PK tables) and the names' own unit words."""
    units = {}
    for parameter in (*NCA_PARAMETERS, *MODEL_PARAMETERS):
        if parameter.unit not in _NO_UNIT:
            units[parameter.name(end)] = parameter.unit.value
    return units


def _header(column: str, units: Mapping[str, str]) -> str:
    if column in units:
        return f"{column} [{units[column]}]"
    for suffix, unit in _UNIT_SUFFIXES.items():
        if column.endswith(suffix):
            return f"{column} [{unit}]"
    return column


def write_workbook(results: Path, path: Path, end: float) -> list[str]:
    """The Excel workbook of the main tables; returns the sheets written."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    units = column_units(end)
    book = Workbook()
    book.remove(book.active)
    written = []
    for sheet_name, rel in WORKBOOK_SHEETS.items():
        source = results / rel
        if not source.is_file():
            continue
        table = read_tsv(source)
        sheet = book.create_sheet(sheet_name)
        sheet.append([_header(c, units) for c in table.columns])
        for row in table.itertuples(index=False):
            sheet.append([None if pd.isna(v) else _cell(v) for v in row])
        sheet.freeze_panes = "A2"
        if len(table.columns):
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{len(table) + 1}"
        written.append(sheet_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return written


def _cell(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars: openpyxl wants Python numbers
        return value.item()
    return value


def results_tables(results: Path) -> list[Path]:
    """Every results table (``*.tsv``), without logs, per-subject working files and the
    run's provenance. Provenance is written beside the exports (rule report_provenance),
    not before them: reading it here raced with its rewriting."""
    skip = ("logs", "batches", "parquet", "provenance")
    return sorted(
        p
        for p in results.rglob("*.tsv")
        if not any(part in skip for part in p.relative_to(results).parts)
    )


def write_parquet(results: Path, out_dir: Path) -> list[Path]:
    """A Parquet copy of every results table, types as :func:`ckpk.tables.read_tsv` reads
    them, at the same relative path (``pk/nca.tsv`` → ``parquet/pk/nca.parquet``)."""
    written = []
    for source in results_tables(results):
        target = out_dir / source.relative_to(results).with_suffix(".parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        read_tsv(source).to_parquet(target, index=False)
        written.append(target)
    return written
