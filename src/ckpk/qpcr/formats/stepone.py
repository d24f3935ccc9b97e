"""StepOne / StepOnePlus and 7500 (SDS v2) "Results" exports: ``.xls``, ``.txt``, ``.csv``.

Differences from QuantStudio (see ``tests/data/shared/data/qpcr/stepone_7500``):
- ``Well`` holds the position itself (``A1``); there is no ``Well Position`` column;
- the Cq header is ``Cт`` with a Cyrillic small te (U+0442), read as ``Ct``;
- trailer rows after the table (``Analysis Type``, ``Endogenous Control``,
  ``Reference Sample`` ...) are not wells and are skipped;
- older SDS software names the target ``Detector``;
- text exports may carry a byte-order mark and CRLF line ends.

An export holding only the ``Sample Setup`` sheet (``7500_std.xls``) has no Ct at all
and is rejected with that reason (:func:`ckpk.qpcr.formats._applied.diagnose`).
"""

from __future__ import annotations

from ._applied import CQ_NAMES, find_results, read_results
from ._document import Document

NAME = "stepone_7500"

COLUMNS = {
    "well": ("well",),
    "sample": ("sample name", "sample"),
    "target": ("target name", "detector name", "detector", "target"),
    "task": ("task",),
    "reporter": ("reporter",),
    "cq": CQ_NAMES,
    "quantity": ("quantity",),
    "omit": ("omit",),
}
REQUIRED = ("well", "sample", "target", "task", "cq")
# Headers of other formats that also have Well/Sample/Target/Cq columns.
FORBIDDEN = ("well position", "content", "fluor")


def detect(doc: Document) -> bool:
    return doc.kind != "rdml" and find_results(doc, COLUMNS, REQUIRED, FORBIDDEN) is not None


def read(doc: Document) -> list[dict]:
    found = find_results(doc, COLUMNS, REQUIRED, FORBIDDEN)
    if found is None:
        return []
    return read_results(doc, *found)
