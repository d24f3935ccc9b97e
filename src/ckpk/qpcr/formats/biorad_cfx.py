"""Bio-Rad CFX Manager / CFX Maestro "Quantification Cq Results" export (``.csv``).

Quirks handled (see ``tests/data/shared/data/qpcr/biorad_cfx/example01.csv``):
- the first column has an empty header (the spreadsheet's row index);
- ``Cq`` is ``NaN`` for wells that did not amplify;
- ``Content`` carries the task *and* a replicate-group number: ``Std-01``, ``Unkn-01``,
  ``NTC``, ``Neg Ctrl``, ``Pos Ctrl``, ``NRT``;
- the standard's known copies are in ``Starting Quantity (SQ)`` (for unknowns that
  column holds the software's own estimate, kept as ``instrument_quantity``);
- ``Target`` may be empty when the plate file named only dyes: the dye (``Fluor``)
  or the caller's target then names the assay (see ``read_plate``);
- wells are written ``A01``; one row per well and dye.
European installations write semicolons and decimal commas; both are detected.
"""

from __future__ import annotations

import math

from ..wells import normalise_task
from ._applied import find_results, result_rows
from ._document import Document
from ._tables import body, cell, cq_reading, flag, quantity_reading, text

NAME = "biorad_cfx"

COLUMNS = {
    "well": ("well",),
    "fluor": ("fluor", "dye"),
    "target": ("target",),
    "content": ("content",),
    "sample": ("sample",),
    "cq": ("cq", "c(t)", "ct"),
    "quantity": ("starting quantity (sq)", "sq", "starting quantity"),
    "excluded": ("excluded", "exclude"),
}
REQUIRED = ("well", "fluor", "content", "cq")


def detect(doc: Document) -> bool:
    return doc.kind != "rdml" and find_results(doc, COLUMNS, REQUIRED) is not None


def read(doc: Document) -> list[dict]:
    found = find_results(doc, COLUMNS, REQUIRED)
    if found is None:
        return []
    table, header, columns = found
    decimal, wells = result_rows(doc, body(doc.rows(table), header), columns)
    records: list[dict] = []
    for row, well, where in wells:
        content = text(cell(row, columns, "content"))
        task = normalise_task(content)
        quantity, quantity_problem = quantity_reading(
            cell(row, columns, "quantity"), decimal, where
        )
        cq, cq_problem = cq_reading(cell(row, columns, "cq"), decimal, where)
        problems = [cq_problem] + ([quantity_problem] if task == "standard" else [])
        records.append(
            {
                "well": well,
                "sample": text(cell(row, columns, "sample")),
                "target": text(cell(row, columns, "target")),
                "task": task,
                "task_raw": content,
                "cq": cq,
                "quantity": quantity if task == "standard" else math.nan,
                "instrument_quantity": quantity if task != "standard" else math.nan,
                "omit": flag(cell(row, columns, "excluded")),
                "reporter": text(cell(row, columns, "fluor")),
                "flag": "; ".join(p for p in problems if p),
            }
        )
    return records
