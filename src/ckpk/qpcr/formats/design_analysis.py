"""QuantStudio Design & Analysis (v2) exports: ``.xlsx`` (and the same table as CSV).

Differences from the older QuantStudio software (see
``appbio_quantstudio_designandanalysis_QS6_Standard_Curve_example04.xlsx``):
- columns are ``Sample``, ``Target``, ``Cq`` (not ``Sample Name``, ``Target Name``, ``CT``);
- 24 metadata rows precede the header (row 25), found by name;
- ``UNDETERMINED`` for wells that did not amplify; ``Omit`` is the text ``FALSE``/``TRUE``;
- the ``Results`` sheet has no ``Quantity`` column: the standards' known quantities
  are on the ``Standard Curve Result`` sheet, joined here by well and target (the
  unknowns' estimates on that sheet become ``instrument_quantity``).
"""

from __future__ import annotations

import math

from ._applied import candidate_tables, find_results, read_results
from ._document import Document
from ._tables import body, cell, detect_decimal, quantity_value, text

NAME = "design_analysis"

COLUMNS = {
    "well": ("well position",),
    "sample": ("sample",),
    "target": ("target",),
    "task": ("task",),
    "reporter": ("reporter",),
    "cq": ("cq",),
    "quantity": ("quantity",),
    "omit": ("omit",),
}
REQUIRED = ("well", "sample", "target", "cq")
FORBIDDEN = ("sample name", "content", "fluor")
QUANTITY_COLUMNS = {
    "well": ("well position",),
    "target": ("target",),
    "quantity": ("quantity",),
    "cq": ("cq",),
}


def detect(doc: Document) -> bool:
    return doc.kind != "rdml" and find_results(doc, COLUMNS, REQUIRED, FORBIDDEN) is not None


def read(doc: Document) -> list[dict]:
    found = find_results(doc, COLUMNS, REQUIRED, FORBIDDEN)
    if found is None:
        return []
    records = read_results(doc, *found)
    if "quantity" in found[2]:
        return records
    known = _quantities(doc, exclude=found[0])
    for record in records:
        quantity = known.get((record["well"], record["target"]), math.nan)
        record["quantity" if record["task"] == "standard" else "instrument_quantity"] = quantity
    return records


def _quantities(doc: Document, exclude: str) -> dict[tuple[str, str], float]:
    """(well, target) → quantity from the first other table that has quantities.

    For standards that is the known input; for unknowns the software's estimate.
    """
    tables = [n for n in candidate_tables(doc) if n != exclude]
    preferred = doc.find_table_name("Standard Curve Result")
    if preferred in tables:
        tables.remove(preferred)
        tables.insert(0, preferred)
    for name in tables:
        located = find_results(doc, QUANTITY_COLUMNS, ("well", "target", "quantity"), tables=[name])
        if located is None:
            continue
        _, header, columns = located
        rows = body(doc.rows(name), header)
        decimal = detect_decimal(cell(r, columns, "cq") for r in rows)
        out: dict[tuple[str, str], float] = {}
        for row in rows:
            well = text(cell(row, columns, "well"))
            where = f"{doc.name}: sheet {name!r}, well {well}"
            key = (well, text(cell(row, columns, "target")))
            out[key] = quantity_value(cell(row, columns, "quantity"), decimal, where)
        return out
    return {}
