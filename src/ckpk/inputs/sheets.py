"""``subjects.tsv`` and ``samples.tsv``: read as Excel and people write them, checked row by row.

Sheets are typed by hand and saved from Excel, so they arrive in UTF-8 (with or without a
byte-order mark), Excel's "Unicode Text" (UTF-16 with a BOM) or a Windows code page, with
quoted cells and Windows paths. A cell that cannot be right costs its row only: the row is
left out and a note naming the sheet, the line and the column says why (the ledger shows
it), while the other rows are used. Read strictly (``notes=None``), the first bad row
raises instead, for command-line use.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.cells import SAFE_NAME_PATTERN, is_safe_name
from ckpk.errors import InputError

from .identity import MAX_ABS_STUDY_DAY, plausible_day

SUBJECTS_SHEET = "subjects.tsv"
SAMPLES_SHEET = "samples.tsv"
CLINICAL_SHEET = "clinical.tsv"
SHEETS = (SUBJECTS_SHEET, SAMPLES_SHEET, CLINICAL_SHEET)
CLINICAL_COLUMNS = ["subject_id", "endpoint", "day", "value"]

SUBJECT_COLUMNS = ["subject_id", "dose_level", "dose", "infusion_date", "cohort"]
SAMPLE_COLUMNS = [
    "sample",
    "subject_id",
    "day",
    "lymphocytes_per_ul",
    "beads_per_test",
    "blood_ul",
    "dna_ng",
]
SAMPLE_NUMBER_COLUMNS = ["day", "lymphocytes_per_ul", "beads_per_test", "blood_ul", "dna_ng"]


# ----------------------------------------------------------------------------- text
def decode_sheet(raw: bytes, name: str) -> str:
    """The sheet's text: UTF-16 with a BOM, UTF-8 (BOM or not), else Windows-1252.

    Latin-1 is the last resort: it maps every byte, so a stray byte never leaves the
    sheet unread (a wrong accent in a cohort name is better than no trial).
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: starts as UTF-16 but cannot be decoded ({exc})") from exc
    if b"\x00" in raw[:200]:
        raise InputError(
            f"{name}: holds NUL bytes (UTF-16 without a byte-order mark?); save it from "
            "Excel as 'Text (Tab delimited)' or 'Unicode Text'"
        )
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def parse_sheet(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, cells)`` rows of a tab-separated sheet.

    Quoted cells (``"S01"``, Excel's quoting of cells with tabs or quotes) are unquoted;
    blank lines and lines starting with ``#`` are skipped; cells are stripped.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar='"')
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            cells = [c.strip() for c in cells]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if header is None:
                header = cells
                continue
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: {exc}") from exc
    if header is None:
        raise InputError(f"{name}: the sheet is empty")
    if len(header) < 2:
        raise InputError(
            f"{name}: not tab-separated (save it from Excel as 'Text (Tab delimited)')"
        )
    return header, rows


def _read_table(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The sheet as text cells (NaN for empty) and the file line of each row."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror})") from exc
    header, rows = parse_sheet(decode_sheet(raw, path.name), path.name)
    width = len(header)
    table_rows, lines = [], []
    for line, cells in rows:
        if len(cells) > width and any(cells[width:]):
            raise InputError(
                f"{path.name}: line {line} has {len(cells)} cells but the header has {width}"
            )
        table_rows.append((cells + [""] * width)[:width])
        lines.append(line)
    table = pd.DataFrame(table_rows, columns=header, dtype=object)
    return table.mask(table == ""), lines


# ----------------------------------------------------------------------- row checks
@dataclass
class _Check:
    """Row checks of one sheet; a failed check leaves its row out (or raises)."""

    name: str
    lines: list[int]
    notes: list[str] | None
    keys: list[object]  # each row's key cell (subject_id, sample), to say which row went
    skipped: dict[str, str] | None = None
    bad: set[int] = field(default_factory=set)

    def fail(self, i: int, message: str) -> None:
        text = f"{self.name}: line {self.lines[i]}: {message}"
        if self.notes is None:
            raise InputError(text)
        if i not in self.bad:
            self.notes.append(f"{text} (row not used)")
            if self.skipped is not None and pd.notna(self.keys[i]):
                self.skipped.setdefault(str(self.keys[i]), text)
        self.bad.add(i)

    def each(self, table: pd.DataFrame, check: Callable[[pd.Series], str]) -> None:
        for i, (_, row) in enumerate(table.iterrows()):
            if i in self.bad:
                continue
            problem = check(row)
            if problem:
                self.fail(i, problem)

    def duplicates(self, table: pd.DataFrame, column: str, what: str) -> None:
        """Rows (not already left out) sharing a key: none of them can be trusted."""
        values = table[column]
        usable = [i for i in range(len(values)) if i not in self.bad and pd.notna(values.iloc[i])]
        found = []
        for i in usable:
            twins = [j for j in usable if j != i and values.iloc[j] == values.iloc[i]]
            if twins:
                found.append((i, ", ".join(str(self.lines[j]) for j in twins)))
        for i, other in found:
            self.fail(i, f"{what} {values.iloc[i]!r} is listed twice (also line {other})")

    def keep(self, table: pd.DataFrame) -> pd.DataFrame:
        return table.drop(index=table.index[sorted(self.bad)]).reset_index(drop=True)


def _number_problem(column: str, value: object, positive: bool, unit: str = "") -> str:
    if pd.isna(value):
        return ""
    try:
        # No decimal-comma or thousands-separator guessing: "1,234" may be either, and
        # a wrong guess would be a silent factor of 1000.
        number = float(str(value))
    except (TypeError, ValueError):
        return f"{column} {value!r} is not a number{unit}"
    if not math.isfinite(number):
        return f"{column} {value!r} is not a finite number{unit}"
    if positive and number <= 0:
        return f"{column} {value!r} must be a positive number{unit}"
    return ""


def _to_numbers(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce")


def _subject_id_problem(value: object) -> str:
    if pd.isna(value):
        return "subject_id is empty"
    if not is_safe_name(str(value)):
        return (
            f"subject_id {value!r} can hold only letters, digits, '.', '_' and '-' and must "
            f"start with a letter or digit ({SAFE_NAME_PATTERN}): it names result folders"
        )
    return ""


def _subject_row_problem(row: pd.Series) -> str:
    problem = _subject_id_problem(row["subject_id"])
    if problem:
        return problem
    if pd.isna(row["dose_level"]):
        return f"dose_level is empty for {row['subject_id']}"
    problem = _number_problem("dose", row["dose"], positive=False, unit=" (CAR+ cells/kg)")
    if problem:
        return problem
    if pd.notna(row["dose"]) and float(row["dose"]) < 0:
        return f"dose {row['dose']!r} is negative (CAR+ cells/kg)"
    date = row["infusion_date"]
    if pd.notna(date) and pd.isna(pd.to_datetime(date, format="%Y-%m-%d", errors="coerce")):
        return f"infusion_date {date!r} is not an ISO date (YYYY-MM-DD)"
    return ""


def read_subjects(
    path: str | Path, notes: list[str] | None = None, skipped: dict[str, str] | None = None
) -> pd.DataFrame:
    """Read and check ``subjects.tsv``: subject_id and dose_level required.

    With ``notes`` (a list), rows with a bad cell are left out and described there;
    without, the first bad row raises :class:`InputError`. ``skipped`` (a dict) receives
    each left-out subject_id with the reason. A missing column, an unreadable or empty file
    always raises.
    """
    path = Path(path)
    table, lines = _read_table(path)
    missing = [c for c in ("subject_id", "dose_level") if c not in table.columns]
    if missing:
        raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}")
    for column in SUBJECT_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    check = _Check(path.name, lines, notes, list(table["subject_id"]), skipped)
    check.each(table, _subject_row_problem)
    check.duplicates(table, "subject_id", "subject")
    table = check.keep(table)
    table["dose"] = _to_numbers(table["dose"])
    extra = [c for c in table.columns if c not in SUBJECT_COLUMNS]
    return table[SUBJECT_COLUMNS + extra].reset_index(drop=True)


def normalise_sample_path(value: object) -> object:
    """A ``sample`` cell as the path ckpk compares with: Windows backslashes become
    ``/`` and a leading ``./`` goes (``flow\\S01\\S01_D14.fcs`` is ``flow/S01/S01_D14.fcs``)."""
    if not isinstance(value, str):
        return value
    text = value.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _sample_row_problem(row: pd.Series) -> str:
    if pd.isna(row["sample"]):
        return "sample is empty"
    for column in SAMPLE_NUMBER_COLUMNS:
        problem = _number_problem(column, row[column], positive=column != "day")
        if problem:
            return problem
    if pd.notna(row["day"]):
        if not plausible_day(float(row["day"])):
            return f"day {row['day']!r} is not a study day (within ±{MAX_ABS_STUDY_DAY:g})"
    if pd.isna(row["subject_id"]) != pd.isna(row["day"]):
        return "give both subject_id and day, or neither (then they come from the name)"
    if pd.notna(row["subject_id"]):
        return _subject_id_problem(row["subject_id"])
    return ""


def read_samples(
    path: str | Path, notes: list[str] | None = None, skipped: dict[str, str] | None = None
) -> pd.DataFrame:
    """Read and check ``samples.tsv``. Empty cells mean "from the name".

    Rows with a bad cell are left out and described in ``notes`` (or raise when it is
    None), as :func:`read_subjects` does.
    """
    path = Path(path)
    table, lines = _read_table(path)
    if "sample" not in table.columns:
        raise InputError(f"{path.name}: missing column 'sample'")
    for column in SAMPLE_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    table["sample"] = table["sample"].map(normalise_sample_path)
    check = _Check(path.name, lines, notes, list(table["sample"]), skipped)
    check.each(table, _sample_row_problem)
    check.duplicates(table, "sample", "sample")
    table = check.keep(table)
    for column in SAMPLE_NUMBER_COLUMNS:
        table[column] = _to_numbers(table[column])
    extra = [c for c in table.columns if c not in SAMPLE_COLUMNS]
    return table[SAMPLE_COLUMNS + extra].reset_index(drop=True)


def sheet_file(input_dir: str | Path, name: str) -> Path | None:
    """The sheet ``name`` of an input folder when it may be read: a regular file, or a
    link to one inside the folder (never a link leading outside it, docs/rules.md)."""
    root = os.path.realpath(input_dir)
    path = Path(input_dir) / name
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root or not os.path.exists(target):
        return None
    return path if stat.S_ISREG(os.stat(target).st_mode) else None


def read_clinical(
    path: str | Path, known_subjects: set[str] | None = None, notes: list[str] | None = None
) -> pd.DataFrame:
    """Read and check ``clinical.tsv``: one row per subject × endpoint × day (e.g. SRI-4
    response at day 90, CRS grade, DLT). Rows with a bad cell, a subject not in
    ``known_subjects`` or a repeated subject/endpoint/day are left out (``notes``)."""
    path = Path(path)
    table, lines = _read_table(path)
    missing = [c for c in CLINICAL_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}")
    check = _Check(path.name, lines, notes, list(table["subject_id"]))

    def problem(row: pd.Series) -> str:
        for column in CLINICAL_COLUMNS:
            if pd.isna(row[column]):
                return f"{column} is empty"
        number = _number_problem("day", row["day"], positive=False)
        if number:
            return number
        if not plausible_day(float(row["day"])):
            return f"day {row['day']!r} is not a study day (within ±{MAX_ABS_STUDY_DAY:g})"
        if known_subjects is not None and str(row["subject_id"]) not in known_subjects:
            return f"subject {row['subject_id']} is not in {SUBJECTS_SHEET}"
        return ""

    check.each(table, problem)
    table["key"] = table["subject_id"].astype(str) + "|" + table["endpoint"].astype(str)
    table["key"] += "|" + _to_numbers(table["day"]).astype(str)
    check.duplicates(table, "key", "subject/endpoint/day")
    table = check.keep(table)
    table["day"] = _to_numbers(table["day"])
    return table[CLINICAL_COLUMNS].reset_index(drop=True)


@dataclass
class Sheets:
    subjects: pd.DataFrame
    samples: pd.DataFrame
    subjects_problem: str  # why no subject can be known ("" when subjects.tsv is usable)
    rejections: dict[str, str]  # sheet file name -> reason it is rejected as a whole
    notes: dict[str, list[str]]  # sheet file name -> rows left out and why
    skipped_subjects: dict[str, str] = field(default_factory=dict)  # subject_id -> why
    skipped_samples: dict[str, str] = field(default_factory=dict)  # sample -> why
    clinical: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CLINICAL_COLUMNS))


def load_sheets(input_dir: str | Path) -> Sheets:
    """``subjects.tsv`` and ``samples.tsv`` of an input folder, checked, never raising.

    A missing or unusable subjects sheet leaves no known subject (every FCS file is then
    rejected, saying why); a samples sheet that cannot be read at all is rejected and names
    alone are used. Bad rows cost only themselves (``notes``).
    """
    root = Path(input_dir)
    subjects = pd.DataFrame(columns=SUBJECT_COLUMNS)
    samples = pd.DataFrame(columns=SAMPLE_COLUMNS)
    problem, rejections = "", {}
    notes: dict[str, list[str]] = {name: [] for name in SHEETS}
    skipped_subjects: dict[str, str] = {}
    skipped_samples: dict[str, str] = {}
    subjects_file, samples_file = sheet_file(root, SUBJECTS_SHEET), sheet_file(root, SAMPLES_SHEET)
    if subjects_file is not None:
        try:
            subjects = read_subjects(subjects_file, notes[SUBJECTS_SHEET], skipped_subjects)
            if subjects.empty:
                raise InputError(f"{SUBJECTS_SHEET}: lists no usable subject")
        except InputError as exc:
            subjects = pd.DataFrame(columns=SUBJECT_COLUMNS)
            problem = f"{SUBJECTS_SHEET} cannot be used ({exc})"
            rejections[SUBJECTS_SHEET] = str(exc)
    else:
        problem = f"{SUBJECTS_SHEET} is missing from the input folder (or cannot be read there)"
    if samples_file is not None:
        try:
            samples = read_samples(samples_file, notes[SAMPLES_SHEET], skipped_samples)
        except InputError as exc:
            rejections[SAMPLES_SHEET] = f"{exc}; file and sample names are used alone"
    clinical = pd.DataFrame(columns=CLINICAL_COLUMNS)
    clinical_file = sheet_file(root, CLINICAL_SHEET)
    if clinical_file is not None:
        known = set(subjects["subject_id"].astype(str))
        try:
            clinical = read_clinical(clinical_file, known, notes[CLINICAL_SHEET])
        except InputError as exc:
            rejections[CLINICAL_SHEET] = f"{exc}; no exposure-response analysis"
    return Sheets(
        subjects, samples, problem, rejections, notes, skipped_subjects, skipped_samples, clinical
    )
