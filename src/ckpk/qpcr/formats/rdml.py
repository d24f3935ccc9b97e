"""RDML 1.0-1.4 (Real-time PCR Data Markup Language, rdml.org): a zip holding the XML,
or the bare XML.

Structure read: ``sample`` (id, ``type``, ``quantity/value``, ``description``),
``target`` (id, ``dyeId``), ``thermalCyclingConditions`` (loops), and
``experiment/run/react`` (``id`` = well, ``sample@id``) with one ``data`` per target
(``tar@id``, ``cq``, ``excl``, ``quantity``, ``adp`` amplification points). Namespaces
are ignored (files declare ``http://www.rdml.org`` with or without prefixes).

No-Cq rule (docs/rules.md, qPCR: not amplified is never a number):
- ``cq`` absent, empty, ``-1`` (RDML's own "no Cq" code) or ``<= 0`` → no Cq;
- a ``cq`` at or above the run's cycle count → no Cq. StepOne software writes
  ``40.0`` — exactly its 40 cycles — for undetermined NTCs
  (``tests/data/shared/data/qpcr/rdml/stepone_std.rdml``) and the LightCycler 96 writes ``100``
  (``lc96_bACTXY.rdml``, 50 cycles): neither is a threshold crossing, because a curve
  cannot cross the threshold at or after its last read. The cycle count is the highest
  ``adp/cyc`` of the run, else the largest ``loop/repeat`` of its thermal programme;
  when neither is present only the first rule applies.

Wells: RDML 1.0 writers use the position (``A1``) as react id; later versions number
reacts 1..n row-major and give the plate geometry in ``pcrFormat`` (``rows``,
``columns``, ``rowLabel`` ``ABC``/``123``), converted here back to ``A1`` labels.

Tasks: sample ``type`` ``std`` → standard, ``unkn`` → unknown, ``ntc``/``nac``/
``ntp``/``nrt`` → ntc, ``pos``/``opt`` → unknown (``task_raw`` keeps the word). Standards
take their known quantity from the sample's ``quantity`` (RDML 1.0-1.2), else from the
reaction's ``data/quantity``. Roche LightCycler 96 files mark unassigned wells as
``ntp`` (the RDML R package drops them): they are kept, but omitted. Roche also names
targets ``DYE@NAME`` (or ``DYE@<GUID>`` for unnamed assays) and samples by GUID with the
name in ``description``: ``NAME`` (or the dye) and the description are used.
Excluded data (``excl`` present and not empty) are omitted.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from ckpk.errors import InputError

from ..wells import normalise_task, parse_well, well_label
from ._document import Document

NAME = "rdml"

GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
RDML_NTC_TYPES = {"ntc", "nac", "ntp", "nrt"}


def detect(doc: Document) -> bool:
    return doc.kind == "rdml"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: ET.Element | None, name: str) -> str:
    if element is None:
        return ""
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def _float(value: str) -> float:
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return math.nan


def _quantity(element: ET.Element | None) -> float:
    """``quantity/value`` of a sample or data element (NaN when absent or not > 0)."""
    if element is None:
        return math.nan
    for quantity in _children(element, "quantity"):
        value = _float(_child_text(quantity, "value"))
        if math.isfinite(value) and value > 0:
            return value
    return math.nan


def _ref_id(element: ET.Element | None) -> str:
    """``<x id="..."/>`` reference, or its text (StepOne writes ``<dyeId>FAM</dyeId>``)."""
    if element is None:
        return ""
    return (element.get("id") or element.text or "").strip()


def read(doc: Document) -> list[dict]:
    try:
        root = ET.fromstring(doc.xml or b"")
    except ET.ParseError as error:
        raise InputError(f"{doc.name}: RDML file whose XML cannot be parsed ({error})") from None
    if _local(root.tag) != "rdml":
        raise InputError(f"{doc.name}: XML file that is not RDML (root <{_local(root.tag)}>)")
    publisher = " ".join(_child_text(i, "publisher") for i in _children(root, "id"))
    roche = "roche" in publisher.casefold()

    samples: dict[str, dict] = {}
    for sample in _children(root, "sample"):
        sample_id = sample.get("id", "")
        description = _child_text(sample, "description")
        name = description if GUID_RE.match(sample_id) and description else sample_id
        samples[sample_id] = {
            "name": name,
            "type": _child_text(sample, "type").casefold(),
            "quantity": _quantity(sample),
        }
    targets: dict[str, dict] = {}
    for target in _children(root, "target"):
        target_id = target.get("id", "")
        dye = _ref_id(_child(target, "dyeId"))
        name = target_id
        if "@" in target_id:  # Roche: "FAM@bACT", "FAM@<guid>"
            dye_part, _, assay = target_id.partition("@")
            name = assay if assay and not GUID_RE.match(assay) else (dye or dye_part)
            dye = dye or dye_part
        targets[target_id] = {"name": name, "dye": dye}
    programme_cycles = {
        tcc.get("id", ""): _loop_cycles(tcc) for tcc in _children(root, "thermalCyclingConditions")
    }

    records: list[dict] = []
    for experiment in _children(root, "experiment"):
        for run in _children(experiment, "run"):
            records.extend(_read_run(doc, run, samples, targets, programme_cycles, roche))
    return records


def _loop_cycles(tcc: ET.Element) -> float:
    repeats = [
        _float(_child_text(_child(step, "loop"), "repeat")) for step in _children(tcc, "step")
    ]
    repeats = [r for r in repeats if math.isfinite(r)]
    return max(repeats) if repeats else math.nan


def _read_run(
    doc: Document,
    run: ET.Element,
    samples: dict[str, dict],
    targets: dict[str, dict],
    programme_cycles: dict[str, float],
    roche: bool,
) -> list[dict]:
    run_id = run.get("id", "")
    geometry = _geometry(_child(run, "pcrFormat"))
    cycles = math.nan
    read_cycles = [
        _float(cyc.text or "") for cyc in run.iter() if _local(cyc.tag) == "cyc" and cyc.text
    ]
    read_cycles = [c for c in read_cycles if math.isfinite(c)]
    if read_cycles:
        cycles = max(read_cycles)
    else:
        tcc = _child(run, "thermalCyclingConditions")
        cycles = programme_cycles.get(_ref_id(tcc), math.nan) if tcc is not None else math.nan

    records: list[dict] = []
    for react in _children(run, "react"):
        well = _well(react.get("id", ""), geometry)
        sample_id = _ref_id(_child(react, "sample"))
        sample = samples.get(sample_id, {"name": sample_id, "type": "", "quantity": math.nan})
        sample_type = sample["type"]
        task = "ntc" if sample_type in RDML_NTC_TYPES else normalise_task(sample_type)
        for data in _children(react, "data"):
            target_id = _ref_id(_child(data, "tar"))
            target = targets.get(target_id, {"name": target_id, "dye": ""})
            cq = _float(_child_text(data, "cq")) if _child(data, "cq") is not None else math.nan
            if not math.isfinite(cq) or cq <= 0 or (math.isfinite(cycles) and cq >= cycles):
                cq = math.nan
            quantity = sample["quantity"]
            if task == "standard" and not math.isfinite(quantity):
                quantity = _quantity(data)
            excluded = bool(_child_text(data, "excl"))
            records.append(
                {
                    "well": well,
                    "sample": sample["name"],
                    "target": target["name"],
                    "task": task,
                    "task_raw": sample_type,
                    "cq": cq,
                    "quantity": quantity if task == "standard" else math.nan,
                    "instrument_quantity": _quantity(data) if task != "standard" else math.nan,
                    "omit": excluded or (roche and sample_type == "ntp"),
                    "reporter": target["dye"],
                    "run": run_id,
                }
            )
    return records


def _geometry(pcr_format: ET.Element | None) -> tuple[int, int, str] | None:
    """(rows, columns, rowLabel) of a run's ``pcrFormat``, when it gives numbers."""
    if pcr_format is None:
        return None
    rows = _float(_child_text(pcr_format, "rows"))
    columns = _float(_child_text(pcr_format, "columns"))
    if not (math.isfinite(rows) and math.isfinite(columns)) or columns < 1:
        return None
    return int(rows), int(columns), _child_text(pcr_format, "rowLabel") or "ABC"


def _well(react_id: str, geometry: tuple[int, int, str] | None) -> str:
    """The ``A1`` label of a react id (a position already, or a row-major number)."""
    react_id = react_id.strip()
    if parse_well(react_id) is not None:
        return react_id
    try:
        number = int(float(react_id))
    except ValueError:
        return react_id
    n_rows, n_cols, row_label = geometry or (8, 12, "ABC")
    if geometry is None and number > 96:
        n_rows, n_cols = 16, 24
    if row_label.upper() != "ABC" or number < 1 or number > n_rows * n_cols:
        return react_id
    row, column = divmod(number - 1, n_cols)
    return well_label(row + 1, column + 1)
