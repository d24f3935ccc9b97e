"""Roche LightCycler 480 "Abs Quant" text export (``Export Table`` of the analysis).

Layout (see ``tests/data/shared/data/qpcr/lightcycler480``): a title line
``Experiment: <name>  Selected Filter: <dye filter>``, then a tab-separated table
``Include  Color  Pos  Name  Cp  Concentration  Standard  Status`` with CRLF line ends.

- ``Include`` ``False`` marks an excluded well (``omit``);
- an empty ``Cp`` means the well did not amplify;
- ``Standard`` holds the known concentration of a standard well and ``0`` for every
  other well, so a positive ``Standard`` makes the well a standard; ``Concentration``
  is the software's estimate (``instrument_quantity``);
- there is no target column: the caller passes the target (``read_plate(target=...)``),
  otherwise the selected filter names it;
- some versions add a ``Type`` column (``Standard``, ``Unknown``, ``Negative Control``)
  which is used when present; without it a well named ``NTC``, ``H2O``, ``water``,
  ``neg...`` or ``blank`` is a no-template control.
"""

from __future__ import annotations

import math
import re

from ..wells import normalise_task
from ._applied import find_results, result_rows
from ._document import Document
from ._tables import (
    body,
    cell,
    cq_reading,
    flag,
    norm,
    number,
    quantity_reading,
    quantity_value,
    text,
)

NAME = "lightcycler480"

COLUMNS = {
    "include": ("include", "inc"),
    "well": ("pos", "position"),
    "sample": ("name", "sample name"),
    "cq": ("cp", "cq", "ct"),
    "concentration": ("concentration", "conc"),
    "standard": ("standard", "std"),
    "status": ("status",),
    "type": ("type", "sample type"),
}
REQUIRED = ("well", "sample", "cq")
NTC_NAME_RE = re.compile(r"^\s*(ntc|h2o|water|blank|neg)", re.IGNORECASE)
FILTER_RE = re.compile(r"Selected Filter:\s*(.+?)\s*$")


def detect(doc: Document) -> bool:
    return doc.kind != "rdml" and find_results(doc, COLUMNS, REQUIRED) is not None


def read(doc: Document) -> list[dict]:
    found = find_results(doc, COLUMNS, REQUIRED)
    if found is None:
        return []
    table, header, columns = found
    all_rows = doc.rows(table)
    dye = _selected_filter(all_rows[:header])
    decimal, wells = result_rows(doc, body(all_rows, header), columns)
    records: list[dict] = []
    for row, well, where in wells:
        sample = text(cell(row, columns, "sample"))
        standard, standard_problem = quantity_reading(
            cell(row, columns, "standard"), decimal, where
        )
        if standard_problem and number(cell(row, columns, "standard"), decimal) == 0:
            # LightCycler writes 0 in the Standard column of every well that is not one.
            standard_problem = ""
        cq, cq_problem = cq_reading(cell(row, columns, "cq"), decimal, where)
        type_word = text(cell(row, columns, "type"))
        if type_word:
            task = normalise_task(type_word)
        elif math.isfinite(standard) or standard_problem:  # a negative standard is one
            task = "standard"
        elif NTC_NAME_RE.match(sample):
            task = "ntc"
        else:
            task = "unknown"
        include = cell(row, columns, "include")
        records.append(
            {
                "well": well,
                "sample": sample,
                "target": "",
                "task": task,
                "task_raw": type_word or ("Standard" if task == "standard" else ""),
                "cq": cq,
                "quantity": standard if task == "standard" else math.nan,
                "instrument_quantity": quantity_value(
                    cell(row, columns, "concentration"), decimal, where
                ),
                "omit": "include" in columns and not flag(include) and norm(include) != "",
                "reporter": dye,
                "flag": "; ".join(
                    p for p in (cq_problem, standard_problem if task == "standard" else "") if p
                ),
            }
        )
    return records


def _selected_filter(title_rows: list[list]) -> str:
    for row in title_rows:
        for value in row:
            match = FILTER_RE.search(text(value))
            if match:
                return match.group(1)
    return ""
