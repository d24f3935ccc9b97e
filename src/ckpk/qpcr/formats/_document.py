"""An instrument export opened as rows of cells, whatever its container.

qPCR software writes the same kind of table in very different containers: tab- or
comma-separated text with ``[Section]`` blocks (QuantStudio, 7500, StepOne), CSV with a
byte-order mark (CFX Maestro), Excel 97-2003 ``.xls`` (StepOne, 7500), ``.xlsx``
(QuantStudio, Design & Analysis) and RDML (a zip holding XML, or bare XML). A
:class:`Document` hides the container: every sheet or text section is a list of rows,
each row a list of cells (``str``, ``float``, ``bool`` or ``None``), and format readers
find their tables by header names inside those rows.

The container is recognised from the bytes, never from the file extension alone: a
``.txt`` that is really an Excel file, or a ``.csv`` saved from Excel as ``.xlsx``, is
opened for what it is.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ckpk.errors import InputError

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls) compound file
# .xlsx and zipped .rdml; some writers (Bio-Rad CFX Manager's RDML) start the archive
# with the spanning marker PK\x07\x08 before the first local header.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x07\x08PK\x03\x04", b"PK\x05\x06")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

Cell = str | float | bool | None
Rows = list[list[Cell]]

# Text delimiters in the order they win a tie: tab first because QuantStudio text
# exports carry commas inside cells ("1,250.000", "RGB(176,23,31)").
DELIMITERS = ("\t", ";", ",")
SECTION_RE = re.compile(r"^\s*\[([^\[\]]+)\]\s*$")
HEADER_KEY_RE = re.compile(r"^\s*\*\s*(.+?)\s*=\s*(.*?)\s*$")


@dataclass
class Document:
    """One export file: named tables of rows plus what its header block says.

    ``kind`` is ``"text"``, ``"xls"``, ``"xlsx"`` or ``"rdml"``. For text files every
    ``[Section]`` is one table (rows before the first section form the table ``""``);
    for workbooks every sheet is one table, loaded when first asked for because
    amplification sheets can hold tens of thousands of rows no reader needs.
    """

    path: Path
    kind: str
    table_names: list[str]
    meta: dict[str, str] = field(default_factory=dict)
    xml: bytes | None = None
    text: str | None = None
    _loader: Callable[[str], Rows] | None = None
    _tables: dict[str, Rows] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def rows(self, table: str) -> Rows:
        """The rows of one table (sheet or section); empty when it does not exist."""
        if table not in self._tables:
            if self._loader is None or table not in self.table_names:
                return []
            self._tables[table] = self._loader(table)
        return self._tables[table]

    def find_table_name(self, wanted: str) -> str | None:
        """The real name of a table, compared case- and space-insensitively."""
        key = " ".join(wanted.split()).casefold()
        for name in self.table_names:
            if " ".join(name.split()).casefold() == key:
                return name
        return None


def decode_text(data: bytes) -> str:
    """Bytes of a text export as ``str``.

    UTF-8 (with or without the byte-order mark CFX Maestro writes) is tried first; text
    that is not valid UTF-8 was written by a Windows program in the ANSI code page, so
    cp1252 is the fallback (it maps almost every byte; the few undefined ones become
    U+FFFD rather than stopping the run). UTF-16 is recognised by its byte-order mark.
    """
    if data.startswith(UTF16_BOMS):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter splitting most of ``lines`` into the most cells (median count)."""
    sample = [line for line in lines if line.strip()][:50]
    if not sample:
        return "\t"
    best, best_count = "\t", 0.0
    for delimiter in DELIMITERS:
        count = statistics.median(_count_outside_quotes(line, delimiter) for line in sample)
        if count > best_count:
            best, best_count = delimiter, count
    return best


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def split_sections(text: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Split a text export into ``[Section]`` blocks and its ``* key = value`` header.

    Applied Biosystems text exports start with ``* Block Type = ...`` lines and then
    hold ``[Sample Setup]``, ``[Amplification Data]``, ``[Results]`` ... blocks. Files
    without sections come back as the single block ``""``. Header lines may be quoted
    when the export was saved as CSV.
    """
    sections: dict[str, list[str]] = {"": []}
    meta: dict[str, str] = {}
    current = ""
    for raw in text.splitlines():
        # A text export re-saved as CSV quotes its lines and pads them with delimiters.
        bare = raw.strip().strip('"').rstrip(",;\t ").strip('"').strip()
        if current == "" and bare.startswith("*"):
            header = HEADER_KEY_RE.match(bare)
            if header:
                meta[header.group(1)] = header.group(2).strip()
                continue
        section = SECTION_RE.match(bare)
        if section:
            current = section.group(1).strip()
            sections.setdefault(current, [])
            continue
        sections[current].append(raw)
    if not sections[""] and len(sections) > 1:
        del sections[""]
    return sections, meta


def parse_delimited(lines: list[str]) -> Rows:
    """Rows of one text block, split on its sniffed delimiter (quotes respected)."""
    delimiter = sniff_delimiter(lines)
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    return [[cell for cell in row] for row in reader]


# What a zipped export (.xlsx, .rdml) may hold once unzipped. A 384-well Design &
# Analysis workbook with every amplification curve is about 21 MB; a zip that unpacks to
# hundreds of MB is a decompression bomb, not an instrument export.
DEFAULT_MAX_UNZIPPED_MB = 200.0


def load_document(path: str | Path, max_unzipped_mb: float = DEFAULT_MAX_UNZIPPED_MB) -> Document:
    """Open ``path`` as a :class:`Document`; :class:`InputError` when it cannot be read.

    A zip archive that would unpack to more than ``max_unzipped_mb`` is refused before
    anything is unpacked (zipfile never yields more than the sizes the archive declares,
    so checking them bounds memory and time).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path.name}: cannot be read ({error.strerror or error})") from error
    if not data.strip():
        raise InputError(f"{path.name}: the file is empty")
    if data.startswith(OLE2_MAGIC):
        return _open_xls(path, data)
    if data.startswith(ZIP_MAGICS):
        return _open_zip(path, data, max_unzipped_mb)
    text = decode_text(data)
    head = text.lstrip()[:2000]
    if head.startswith("<") and "<rdml" in text[:20000]:
        return Document(path=path, kind="rdml", table_names=[], xml=data)
    if "\x00" in text[:5000]:
        raise InputError(f"{path.name}: binary file, not a text, Excel or RDML qPCR export")
    sections, meta = split_sections(text)
    tables = {name: parse_delimited(lines) for name, lines in sections.items()}
    return Document(
        path=path, kind="text", table_names=list(tables), meta=meta, text=text, _tables=tables
    )


def _open_zip(path: Path, data: bytes, max_unzipped_mb: float) -> Document:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        unzipped = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as error:
        raise InputError(f"{path.name}: damaged zip archive ({error})") from error
    if unzipped > max_unzipped_mb * 1e6:
        raise InputError(
            f"{path.name}: unpacks to {unzipped / 1e6:,.0f} MB from a {len(data) / 1e6:.2g} MB "
            f"file, more than qpcr.max_unzipped_mb ({max_unzipped_mb:g} MB): refused unread as "
            "a possible decompression bomb; raise the limit if this export is genuine"
        )
    if "xl/workbook.xml" in names:
        return _open_xlsx(path, data)
    xml_names = sorted(n for n in names if n.lower().endswith((".xml", ".rdml")))
    # RDML zips hold rdml_data.xml (Roche adds app/module/calculated data beside it);
    # other writers name the single XML after the file.
    xml_names.sort(key=lambda n: (Path(n).name.lower() != "rdml_data.xml", n))
    for name in xml_names:
        try:
            content = archive.read(name)
        except (zipfile.BadZipFile, OSError, RuntimeError) as error:
            raise InputError(f"{path.name}: cannot unzip {name} ({error})") from error
        if b"<rdml" in content[:20000]:
            return Document(path=path, kind="rdml", table_names=[], xml=content)
    raise InputError(
        f"{path.name}: zip archive that is neither an Excel workbook nor RDML "
        f"(it holds {', '.join(names[:5]) or 'nothing'})"
    )


def _open_xlsx(path: Path, data: bytes) -> Document:
    import openpyxl

    def open_book():
        with warnings.catch_warnings():
            # Vendor workbooks often lack a default style; openpyxl warns and copes.
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)

    try:
        book = open_book()
        names = list(book.sheetnames)
        book.close()
    except Exception as error:  # openpyxl raises many types for damaged files
        raise InputError(f"{path.name}: unreadable .xlsx workbook ({error})") from error

    def load(sheet: str) -> Rows:
        book = open_book()
        try:
            return [list(row) for row in book[sheet].iter_rows(values_only=True)]
        finally:
            book.close()

    return Document(path=path, kind="xlsx", table_names=names, _loader=load)


def _open_xls(path: Path, data: bytes) -> Document:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        names = list(book.sheet_names())
    except Exception as error:  # xlrd raises XLRDError, CompDocError, struct errors ...
        raise InputError(f"{path.name}: unreadable Excel 97-2003 workbook ({error})") from error

    def load(sheet: str) -> Rows:
        table = book.sheet_by_name(sheet)
        rows: Rows = []
        for r in range(table.nrows):
            rows.append([_xls_cell(table.cell(r, c)) for c in range(table.ncols)])
        book.unload_sheet(sheet)
        return rows

    return Document(path=path, kind="xls", table_names=names, _loader=load)


def _xls_cell(cell: object) -> Cell:
    import xlrd

    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype in (xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_DATE):
        return float(cell.value)
    return str(cell.value)
