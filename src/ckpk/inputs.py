"""The input folder: discovery, identity of each file, sheets and the ledger.

Layout in config/README.md; the rules in docs/rules.md.

Every file under ``input_dir`` gets one ledger row: what kind it is (fcs, qpcr, sheet,
other), whether it is used (ok), refused (rejected) or not an input (ignored), why,
and its SHA-256 so a report can prove which bytes it was made from. Accepted FCS
files and qPCR exports go into the sample manifest, which the later stages read.

Identity of a measurement is (subject_id, study day). It comes from the file or plate
sample name through a configurable regular expression with the named groups
``subject_id`` and ``day``, unless ``samples.tsv`` has a row for that file or sample,
which wins.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.errors import InputError

DEFAULT_NAME_PATTERN = r"^(?P<subject_id>[A-Za-z0-9-]+)_D(?P<day>-?\d+(\.\d+)?)"

SUBJECTS_SHEET = "subjects.tsv"
SAMPLES_SHEET = "samples.tsv"

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

LEDGER_COLUMNS = ["file", "kind", "status", "reason", "sha256", "subject_id", "day", "stage"]
MANIFEST_COLUMNS = [
    "file",
    "kind",
    "subject_id",
    "day",
    "identity_from",
    "lymphocytes_per_ul",
    "beads_per_test",
    "blood_ul",
    "dna_ng",
]

FCS_EXTENSIONS = {".fcs", ".lmd"}
QPCR_EXTENSIONS = {".txt", ".csv", ".xls", ".xlsx", ".rdml", ".tsv"}


# ---------------------------------------------------------------------------- sheets
def _read_sheet(path: Path) -> pd.DataFrame:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror})") from exc
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise InputError(f"{path.name}: the sheet is empty")
    if "\t" not in lines[0]:
        raise InputError(
            f"{path.name}: not tab-separated (save it from Excel as 'Text (Tab delimited)')"
        )
    header = [h.strip() for h in lines[0].split("\t")]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) > len(header) and any(cells[len(header) :]):
            raise InputError(
                f"{path.name}: line {number} has {len(cells)} cells but the header has "
                f"{len(header)}"
            )
        rows.append((cells + [""] * len(header))[: len(header)])
    table = pd.DataFrame(rows, columns=header, dtype=object)
    return table.mask(table == "")


def read_subjects(path: str | Path) -> pd.DataFrame:
    """Read and check ``subjects.tsv``: subject_id and dose_level required (config/README.md)."""
    path = Path(path)
    table = _read_sheet(path)
    missing = [c for c in ("subject_id", "dose_level") if c not in table.columns]
    if missing:
        raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}")
    for column in SUBJECT_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    for i, row in table.iterrows():
        line = int(i) + 2
        if pd.isna(row["subject_id"]):
            raise InputError(f"{path.name}: line {line}: subject_id is empty")
        if pd.isna(row["dose_level"]):
            raise InputError(
                f"{path.name}: line {line}: dose_level is empty for {row['subject_id']}"
            )
    dupes = table["subject_id"][table["subject_id"].duplicated()]
    if len(dupes):
        raise InputError(f"{path.name}: subject {dupes.iloc[0]} is listed twice")
    dose = pd.to_numeric(table["dose"], errors="coerce")
    bad = dose.isna() & table["dose"].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path.name}: line {i + 2}: dose {table['dose'].iloc[i]!r} is not "
            "a number (CAR+ cells/kg)"
        )
    table["dose"] = dose
    dates = pd.to_datetime(table["infusion_date"], format="%Y-%m-%d", errors="coerce")
    bad = dates.isna() & table["infusion_date"].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path.name}: line {i + 2}: infusion_date "
            f"{table['infusion_date'].iloc[i]!r} is not an ISO date (YYYY-MM-DD)"
        )
    extra = [c for c in table.columns if c not in SUBJECT_COLUMNS]
    return table[SUBJECT_COLUMNS + extra].reset_index(drop=True)


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read and check ``samples.tsv`` (config/README.md). Empty cells mean "from the name"."""
    path = Path(path)
    table = _read_sheet(path)
    if "sample" not in table.columns:
        raise InputError(f"{path.name}: missing column 'sample'")
    for column in SAMPLE_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    for column in SAMPLE_NUMBER_COLUMNS:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna() & table[column].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{path.name}: line {i + 2}: {column} {table[column].iloc[i]!r} is not a number"
            )
        if column != "day" and (numbers <= 0).any():
            i = int(np.flatnonzero((numbers <= 0).to_numpy())[0])
            raise InputError(f"{path.name}: line {i + 2}: {column} must be positive")
        table[column] = numbers
    if table["sample"].isna().any():
        i = int(np.flatnonzero(table["sample"].isna().to_numpy())[0])
        raise InputError(f"{path.name}: line {i + 2}: sample is empty")
    half = table["subject_id"].isna() != table["day"].isna()
    if half.any():
        i = int(np.flatnonzero(half.to_numpy())[0])
        raise InputError(
            f"{path.name}: line {i + 2}: give both subject_id and day, or "
            "neither (then they come from the name)"
        )
    dupes = table["sample"][table["sample"].duplicated()]
    if len(dupes):
        raise InputError(f"{path.name}: sample {dupes.iloc[0]!r} is listed twice")
    extra = [c for c in table.columns if c not in SAMPLE_COLUMNS]
    return table[SAMPLE_COLUMNS + extra].reset_index(drop=True)


# --------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class Identity:
    subject_id: str
    day: float
    source: str  # "samples.tsv" or "name"


def identify(
    name: str,
    pattern: str | re.Pattern[str] = DEFAULT_NAME_PATTERN,
    sheet_row: pd.Series | None = None,
) -> Identity | None:
    """Subject and day of a file or plate sample name; the samples.tsv row wins."""
    if sheet_row is not None and pd.notna(sheet_row.get("subject_id")):
        return Identity(str(sheet_row["subject_id"]), float(sheet_row["day"]), "samples.tsv")
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = regex.match(name)
    if match is None:
        return None
    try:
        return Identity(match.group("subject_id"), float(match.group("day")), "name")
    except (IndexError, ValueError):
        return None


def sample_sheet_row(sheet: pd.DataFrame | None, *keys: str) -> pd.Series | None:
    """The samples.tsv row whose ``sample`` equals the first matching key."""
    if sheet is None or sheet.empty:
        return None
    index = {str(s): i for i, s in enumerate(sheet["sample"])}
    for key in keys:
        if key in index:
            return sheet.iloc[index[key]]
    return None


def check_name_pattern(pattern: str) -> re.Pattern[str]:
    """Compile the configured name pattern; it must have subject_id and day groups."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(
            f"sample_name_pattern {pattern!r} is not a regular expression: {exc}"
        ) from exc
    missing = {"subject_id", "day"} - set(regex.groupindex)
    if missing:
        raise InputError(
            f"sample_name_pattern {pattern!r} lacks the named group(s) {', '.join(sorted(missing))}"
        )
    return regex


# -------------------------------------------------------------------------- discovery
def list_input_files(input_dir: str | Path) -> list[str]:
    """All files under ``input_dir`` as sorted POSIX paths relative to it."""
    root = Path(input_dir)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _looks_like_fcs(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(3) == b"FCS"
    except OSError:
        return False


def classify(rel: str, path: Path) -> str:
    """Kind of a file from where it sits and what it starts with (config/README.md)."""
    parts = rel.split("/")
    if len(parts) == 1 and parts[0] in (SUBJECTS_SHEET, SAMPLES_SHEET):
        return "sheet"
    top = parts[0].lower()
    suffix = Path(rel).suffix.lower()
    if top == "flow" and len(parts) > 1:
        if suffix in FCS_EXTENSIONS or _looks_like_fcs(path):
            return "fcs"
        return "other"
    if top == "qpcr" and len(parts) > 1:
        if suffix in QPCR_EXTENSIONS and not Path(rel).name.startswith("."):
            return "qpcr"
        return "other"
    return "other"


def check_input_folder(input_dir: str | Path) -> None:
    """Refuse, before any job, an input folder no run could make anything of.

    A missing or unreadable ``subjects.tsv`` (no file can then be given a subject) and a
    folder without a single FCS file or qPCR export would otherwise give a "green" run
    whose every file is refused; the message names the file or folder and what to do.
    """
    root = Path(input_dir)
    sheet = root / SUBJECTS_SHEET
    if not sheet.is_file():
        raise InputError(
            f"{sheet} is missing: list every subject in it (tab-separated columns "
            "subject_id and dose_level; see config/README.md), then run again"
        )
    try:
        subjects = read_subjects(sheet)
    except InputError as exc:
        message = str(exc).removeprefix(f"{SUBJECTS_SHEET}: ")
        raise InputError(f"{sheet}: {message}; correct the sheet and run again") from exc
    if subjects.empty:
        raise InputError(
            f"{sheet} lists no subject: add one row per subject (subject_id, dose_level)"
        )
    kinds = {classify(rel, root / rel) for rel in list_input_files(root)}
    if not kinds & {"fcs", "qpcr"}:
        raise InputError(
            f"{root} holds no instrument file: put FCS files under {root / 'flow'}/ and "
            f"qPCR exports under {root / 'qpcr'}/ (see README.md), then run again"
        )


@dataclass
class Sheets:
    subjects: pd.DataFrame
    samples: pd.DataFrame
    subjects_problem: str  # why no subject can be known ("" when subjects.tsv is fine)
    rejections: dict[str, str]  # sheet file name -> reason it is rejected


def load_sheets(input_dir: str | Path) -> Sheets:
    """``subjects.tsv`` and ``samples.tsv`` of an input folder, checked, never raising.

    A missing or bad subjects sheet leaves no known subject (every FCS file is then
    rejected, saying why); a bad samples sheet is rejected and names alone are used.
    """
    root = Path(input_dir)
    subjects = pd.DataFrame(columns=SUBJECT_COLUMNS)
    samples = pd.DataFrame(columns=SAMPLE_COLUMNS)
    problem, rejections = "", {}
    if (root / SUBJECTS_SHEET).is_file():
        try:
            subjects = read_subjects(root / SUBJECTS_SHEET)
            if subjects.empty:
                raise InputError(f"{SUBJECTS_SHEET}: lists no subjects")
        except InputError as exc:
            subjects = pd.DataFrame(columns=SUBJECT_COLUMNS)
            problem = f"{SUBJECTS_SHEET} cannot be used ({exc})"
            rejections[SUBJECTS_SHEET] = str(exc)
    else:
        problem = f"{SUBJECTS_SHEET} is missing from the input folder"
    if (root / SAMPLES_SHEET).is_file():
        try:
            samples = read_samples(root / SAMPLES_SHEET)
        except InputError as exc:
            rejections[SAMPLES_SHEET] = f"{exc}; file and sample names are used alone"
    return Sheets(subjects, samples, problem, rejections)


@dataclass
class IngestResult:
    ledger: pd.DataFrame
    manifest: pd.DataFrame
    subjects: pd.DataFrame
    samples: pd.DataFrame


def ingest(input_dir: str | Path, name_pattern: str = DEFAULT_NAME_PATTERN) -> IngestResult:
    """Account for every file under ``input_dir`` and identify the usable ones.

    Never raises on bad input: an unreadable sheet, an unknown subject, a duplicate
    subject/day or a name that says nothing becomes a rejected ledger row.
    """
    root = Path(input_dir)
    regex = check_name_pattern(name_pattern)
    files = list_input_files(root)
    ledger: dict[str, dict] = {}
    for rel in files:
        path = root / rel
        ledger[rel] = {
            "file": rel,
            "kind": classify(rel, path),
            "status": "ok",
            "reason": "",
            "sha256": sha256_of(path),
            "stage": "ingest",
        }

    sheets = load_sheets(root)
    subjects, samples = sheets.subjects, sheets.samples
    subjects_problem = sheets.subjects_problem
    for name, reason in sheets.rejections.items():
        ledger[name].update(status="rejected", reason=reason)

    known_subjects = set(subjects["subject_id"].astype(str))
    manifest_rows = []
    for rel, row in ledger.items():
        kind = row["kind"]
        if kind == "other":
            row.update(
                status="ignored",
                reason="not an FCS file under flow/, a qPCR export under qpcr/ or a sheet",
            )
            continue
        if kind == "qpcr":
            manifest_rows.append({"file": rel, "kind": kind})
            continue
        if kind != "fcs":
            continue
        if not _looks_like_fcs(root / rel):
            row.update(status="rejected", reason="not an FCS file: it does not start with 'FCS'")
            continue
        name = Path(rel).name
        sheet_row = sample_sheet_row(samples, rel, name)
        identity = identify(Path(rel).stem, regex, sheet_row)
        if identity is None:
            row.update(
                status="rejected",
                reason=f"the file name {name!r} does not give subject and day (pattern "
                f"{regex.pattern}) and samples.tsv has no row for it",
            )
            continue
        row.update(subject_id=identity.subject_id, day=identity.day)
        if subjects_problem:
            row.update(status="rejected", reason=f"subject unknown: {subjects_problem}")
            continue
        if identity.subject_id not in known_subjects:
            row.update(
                status="rejected",
                reason=f"subject {identity.subject_id} is not in {SUBJECTS_SHEET}",
            )
            continue
        entry = {
            "file": rel,
            "kind": kind,
            "subject_id": identity.subject_id,
            "day": identity.day,
            "identity_from": identity.source,
        }
        if sheet_row is not None:
            for column in ("lymphocytes_per_ul", "beads_per_test", "blood_ul", "dna_ng"):
                entry[column] = sheet_row.get(column)
        manifest_rows.append(entry)

    manifest = pd.DataFrame(manifest_rows, columns=MANIFEST_COLUMNS)
    manifest = _reject_duplicates(manifest, ledger)
    ledger_table = pd.DataFrame(list(ledger.values()), columns=LEDGER_COLUMNS)
    return IngestResult(ledger=ledger_table, manifest=manifest, subjects=subjects, samples=samples)


def _reject_duplicates(manifest: pd.DataFrame, ledger: dict[str, dict]) -> pd.DataFrame:
    """Two FCS files for one subject and day: neither can be trusted, both are refused."""
    fcs = manifest[manifest["kind"] == "fcs"]
    keys = fcs[["subject_id", "day"]].apply(tuple, axis=1) if len(fcs) else pd.Series([])
    duplicated = keys.duplicated(keep=False) if len(fcs) else pd.Series([], dtype=bool)
    drop = set()
    for key, group in fcs[duplicated.to_numpy()].groupby(["subject_id", "day"]):
        names = sorted(group["file"])
        for rel in names:
            others = ", ".join(n for n in names if n != rel)
            ledger[rel].update(
                status="rejected",
                reason=f"duplicate subject/day: {key[0]} day {key[1]:g} is also in {others}; "
                "keep one file or give each its own row in samples.tsv",
            )
            drop.add(rel)
    return manifest[~manifest["file"].isin(drop)].reset_index(drop=True)


def merge_ledger(ingest_ledger: pd.DataFrame, *stage_tables: pd.DataFrame) -> pd.DataFrame:
    """The final ledger: ingest's rows updated by later stages' verdicts.

    Stage tables have columns file, status, reason (and optionally stage). A stage
    can reject a file ingest accepted (unreadable FCS, failed standard curve) or add a
    note to an accepted one; a rejection from any stage wins over ok.
    """
    ledger = ingest_ledger.copy().set_index("file", drop=False)
    for table in stage_tables:
        for row in table.itertuples(index=False):
            file = row.file
            if file not in ledger.index:
                continue
            status = getattr(row, "status", "rejected")
            reason = _text(getattr(row, "reason", ""))
            stage = _text(getattr(row, "stage", ""))
            current_status = ledger.at[file, "status"]
            current = _text(ledger.at[file, "reason"])
            if status == "rejected" or current_status == "ok":
                if status == "rejected":
                    ledger.at[file, "status"] = "rejected"
                joined = "; ".join(r for r in (current, reason) if r)
                ledger.at[file, "reason"] = joined
                if stage:
                    ledger.at[file, "stage"] = stage
    return ledger.reset_index(drop=True)


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
