"""QuantStudio 3/5/6/7 Flex and ViiA 7 "Results" exports (QuantStudio Real-Time PCR software).

Containers: the ``.txt`` export (``* key = value`` header, ``[Sample Setup]``,
``[Amplification Data]``, ``[Results]`` ... blocks, tab-separated), the same saved as
``.csv`` and the ``.xlsx`` export (one sheet per block, header block in the first rows,
the table from row 43 in ``appbio_quantstudio_example08.xlsx``).

Quirks handled (seen in the real exports in ``tests/data/shared/data/qpcr/quantstudio``):
- the Cq column is ``CT`` (Ct method) or ``CRT`` (relative threshold, with ``Crt Mean``);
- ``Undetermined`` for wells that did not amplify;
- thousands commas in ``Quantity`` (``1,250.000``);
- a well may be absent from Results (well 95 of ``appbio_quantstudio_example04.txt``);
- multiplex wells give one row per target (``Well`` repeats);
- columns repeated at the end of the row (``Target Name``, ``Task``): first one wins;
- the embedded ``Slope``/``Y-Intercept`` columns can be stale (re-analysed plates): the
  curve is always refitted from the wells (:func:`ckpk.qpcr.standard_curves`).
"""

from __future__ import annotations

from ._applied import CQ_NAMES, find_results, read_results
from ._document import Document

NAME = "quantstudio"

COLUMNS = {
    "well": ("well position",),
    "sample": ("sample name",),
    "target": ("target name", "detector name", "detector"),
    "task": ("task",),
    "reporter": ("reporter",),
    "cq": CQ_NAMES,
    "quantity": ("quantity",),
    "omit": ("omit",),
}
REQUIRED = ("well", "sample", "target", "cq")


def detect(doc: Document) -> bool:
    return doc.kind != "rdml" and find_results(doc, COLUMNS, REQUIRED) is not None


def read(doc: Document) -> list[dict]:
    found = find_results(doc, COLUMNS, REQUIRED)
    if found is None:
        return []
    return read_results(doc, *found)
