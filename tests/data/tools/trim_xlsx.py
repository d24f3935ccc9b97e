"""Copy an .xlsx workbook keeping only some of its worksheets, every kept cell unchanged.

Used for the QuantStudio Design & Analysis example in ``tests/data`` (see
``tests/data/README.md``): its per-cycle sheets (``Amplification Data``,
``Multicomponent``, ``Raw Data``) are 2.4 MB that no ckpk reader opens. The workbook is
edited at the zip/XML level, not re-saved by a spreadsheet library, so the kept parts are
byte-for-byte the original XML:

- the dropped sheets' parts (``xl/worksheets/sheetN.xml``) are left out of the zip;
- their ``<sheet>`` elements are removed from ``xl/workbook.xml``, their
  ``<Relationship>`` elements from ``xl/_rels/workbook.xml.rels`` and their
  ``<Override>`` elements from ``[Content_Types].xml``;
- every other zip entry is copied with its name, order, date and compression method.

The tool refuses workbooks where that would not be enough (a dropped sheet with its own
relationships, defined names, a selected tab beyond the kept sheets). After writing, it
reads both workbooks with openpyxl and checks that every kept sheet has exactly the
original cell values, and that the dropped ones are gone.

Reproduce the copy in ``tests/data`` from the project root (``../shared`` beside it)::

    F=data/qpcr/quantstudio/appbio_quantstudio_designandanalysis_QS6_Standard_Curve_example04.xlsx
    python tests/data/tools/trim_xlsx.py ../shared/$F tests/data/shared/$F \\
        --keep Results --keep "Replicate Group Result" --keep "Standard Curve Result"
"""

from __future__ import annotations

import argparse
import posixpath
import re
import sys
import zipfile
from pathlib import Path

ELEMENT = re.compile(r"<(?P<tag>sheet|Relationship|Override)\b[^>]*?/>")
ATTRIBUTE = re.compile(r'([\w:]+)="([^"]*)"')


def _attributes(element: str) -> dict[str, str]:
    return dict(ATTRIBUTE.findall(element))


def _drop_elements(xml: str, tag: str, drop) -> tuple[str, int]:
    """``xml`` without the self-closing ``<tag .../>`` elements for which ``drop(attrs)``."""
    removed = 0

    def replace(match: re.Match) -> str:
        nonlocal removed
        if match.group("tag") == tag and drop(_attributes(match.group(0))):
            removed += 1
            return ""
        return match.group(0)

    return ELEMENT.sub(replace, xml), removed


def trim(source: Path, dest: Path, keep: list[str]) -> list[str]:
    """Write ``dest``: ``source`` with only the worksheets named in ``keep``.

    Returns the names of the dropped sheets.
    """
    with zipfile.ZipFile(source) as archive:
        infos = archive.infolist()
        parts = {info.filename: archive.read(info.filename) for info in infos}

    workbook = parts["xl/workbook.xml"].decode("utf-8")
    rels = parts["xl/_rels/workbook.xml.rels"].decode("utf-8")
    types = parts["[Content_Types].xml"].decode("utf-8")

    sheets = [
        _attributes(m.group(0)) for m in ELEMENT.finditer(workbook) if m.group("tag") == "sheet"
    ]
    names = [s["name"] for s in sheets]
    missing = sorted(set(keep) - set(names))
    if missing:
        raise SystemExit(f"{source.name}: no sheet(s) {missing}; it has {names}")
    if "<definedName" in workbook:
        raise SystemExit(f"{source.name}: defined names may refer to dropped sheets; not handled")
    active = re.search(r'activeTab="(\d+)"', workbook)
    if active:  # the selected tab's index must still point at the same sheet
        index = int(active.group(1))
        if any(name not in keep for name in names[: index + 1]):
            raise SystemExit(f"{source.name}: the selected tab would move; not handled")

    targets = {
        r["Id"]: posixpath.normpath(posixpath.join("xl", r["Target"]))
        for r in (_attributes(m.group(0)) for m in ELEMENT.finditer(rels))
        if "Id" in r
    }
    dropped = [s for s in sheets if s["name"] not in keep]
    drop_ids = {s["r:id"] for s in dropped}
    drop_parts = {targets[i] for i in drop_ids}
    for part in drop_parts:
        own_rels = posixpath.join(
            posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels"
        )
        if own_rels in parts:
            raise SystemExit(f"{source.name}: {part} has its own relationships; not handled")

    workbook, n_sheets = _drop_elements(workbook, "sheet", lambda a: a.get("r:id") in drop_ids)
    rels, n_rels = _drop_elements(rels, "Relationship", lambda a: a.get("Id") in drop_ids)
    types, n_types = _drop_elements(
        types, "Override", lambda a: a.get("PartName", "").lstrip("/") in drop_parts
    )
    if not n_sheets == n_rels == n_types == len(dropped):
        raise SystemExit(
            f"{source.name}: removed {n_sheets} sheet, {n_rels} relationship and {n_types} "
            f"content-type entries for {len(dropped)} dropped sheets"
        )
    parts["xl/workbook.xml"] = workbook.encode("utf-8")
    parts["xl/_rels/workbook.xml.rels"] = rels.encode("utf-8")
    parts["[Content_Types].xml"] = types.encode("utf-8")

    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as out:
        for info in infos:
            if info.filename in drop_parts:
                continue
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.compress_type = info.compress_type
            copy.external_attr = info.external_attr
            copy.create_system = info.create_system
            out.writestr(copy, parts[info.filename], compresslevel=9)
    return [s["name"] for s in dropped]


def check(source: Path, dest: Path, keep: list[str], dropped: list[str]) -> None:
    """Every kept sheet of ``dest`` holds exactly the cell values of ``source``."""
    import openpyxl

    original = openpyxl.load_workbook(source, read_only=True, data_only=True)
    trimmed = openpyxl.load_workbook(dest, read_only=True, data_only=True)
    assert trimmed.sheetnames == [n for n in original.sheetnames if n in keep], trimmed.sheetnames
    assert not set(dropped) & set(trimmed.sheetnames)
    for name in keep:
        before = list(original[name].iter_rows(values_only=True))
        after = list(trimmed[name].iter_rows(values_only=True))
        assert before == after, f"sheet {name!r} differs after trimming"
    original.close()
    trimmed.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--keep", action="append", required=True, help="sheet to keep")
    args = parser.parse_args(argv)
    dropped = trim(args.source, args.dest, args.keep)
    check(args.source, args.dest, args.keep, dropped)
    print(
        f"{args.dest}: kept {args.keep}, dropped {dropped}; {args.source.stat().st_size:,} "
        f"-> {args.dest.stat().st_size:,} bytes; the kept sheets' cells are identical"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
