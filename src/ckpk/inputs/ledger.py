"""The ledger: one row per entry of the input folder, and the manifest of usable files.

Every entry under ``input_dir`` gets one ledger row: what kind it is (fcs, qpcr, sheet,
other), whether it is used (ok), refused (rejected) or not an input (ignored), why, and
its SHA-256 so a report can prove which bytes it was made from. Accepted FCS files and
qPCR exports go into the sample manifest, which the later stages read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from ckpk.cells import text

from .discovery import Entry, classify, looks_like_fcs, scan_input, sha256_of
from .identity import DEFAULT_NAME_PATTERN, check_name_pattern, identify, sample_sheet_row
from .sheets import SAMPLES_SHEET, SUBJECTS_SHEET, Sheets, load_sheets

LEDGER_COLUMNS = ["file", "kind", "status", "reason", "sha256", "subject_id", "day", "stage"]
STAGE_LEDGER_COLUMNS = ["file", "status", "reason", "stage"]
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
PER_SAMPLE_VALUES = ("lymphocytes_per_ul", "beads_per_test", "blood_ul", "dna_ng")
NOT_AN_INPUT = "not an FCS file under flow/, a qPCR export under qpcr/ or a sheet"


@dataclass
class IngestResult:
    ledger: pd.DataFrame
    manifest: pd.DataFrame
    subjects: pd.DataFrame
    samples: pd.DataFrame


def _ledger_row(entry: Entry) -> dict:
    row = {
        "file": entry.rel,
        "kind": classify(entry.rel, None if entry.problem else entry.path),
        "status": "ok",
        "reason": "",
        "sha256": "",
        "stage": "ingest",
    }
    if entry.problem:
        row.update(status="ignored" if entry.ignored else "rejected", reason=entry.problem)
        return row
    try:
        row["sha256"] = sha256_of(entry.path)
    except OSError as exc:
        row.update(status="rejected", reason=f"cannot be read ({exc.strerror})")
    return row


def _sheet_verdicts(ledger: dict[str, dict], sheets: Sheets, fcs_files: set[str]) -> None:
    for name, reason in sheets.rejections.items():
        if name in ledger:
            ledger[name].update(status="rejected", reason=reason)
    notes = {name: list(rows) for name, rows in sheets.notes.items()}
    notes[SAMPLES_SHEET] += _unmatched_sample_paths(sheets.samples, fcs_files)
    for name, rows in notes.items():
        if rows and name in ledger and ledger[name]["status"] == "ok":
            ledger[name]["reason"] = "; ".join(rows)


def _unmatched_sample_paths(samples: pd.DataFrame, fcs_files: set[str]) -> list[str]:
    """samples.tsv rows that name a file path which names no FCS file of the folder."""
    names = {PurePosixPath(f).name for f in fcs_files}
    notes = []
    for sample in samples["sample"].dropna().astype(str):
        looks_like_path = "/" in sample or PurePosixPath(sample).suffix.lower() in (
            ".fcs",
            ".lmd",
        )
        if not looks_like_path or sample in fcs_files or sample in names:
            continue
        if sample.startswith("/") or re.match(r"^[A-Za-z]:/", sample):
            why = "is an absolute path: give the path relative to the input folder"
        elif ".." in PurePosixPath(sample).parts:
            why = "leaves the input folder ('..')"
        elif any(f.startswith(sample.rstrip("/") + "/") for f in fcs_files):
            why = "names a folder, not an FCS file"
        else:
            why = "names no FCS file of the input folder"
        notes.append(f"{SAMPLES_SHEET}: sample {sample!r} {why} (row not used)")
    return notes


def _no_identity_reason(name: str, stem: str, regex: re.Pattern[str]) -> str:
    match = regex.match(stem)
    if match is not None:
        return (
            f"the file name {name!r} gives day {match.group('day')!r}, which is not a "
            "plausible study day; give the day in samples.tsv"
        )
    return (
        f"the file name {name!r} does not give subject and day (pattern {regex.pattern}) "
        "and samples.tsv has no row for it"
    )


def _identify_fcs(
    row: dict, rel: str, root: Path, regex: re.Pattern[str], sheets: Sheets
) -> dict | None:
    """The manifest entry of one FCS file, or None after marking its ledger row."""
    if not looks_like_fcs(root / rel):
        row.update(status="rejected", reason="not an FCS file: it does not start with 'FCS'")
        return None
    name = PurePosixPath(rel).name
    sheet_row = sample_sheet_row(sheets.samples, rel, name)
    identity = identify(PurePosixPath(rel).stem, regex, sheet_row)
    if identity is None:
        reason = _no_identity_reason(name, PurePosixPath(rel).stem, regex)
        dropped = sheets.skipped_samples.get(rel) or sheets.skipped_samples.get(name)
        if dropped:
            reason = reason.replace(
                "samples.tsv has no row for it", "its samples.tsv row is not used"
            )
            reason += f" ({dropped})"
        row.update(status="rejected", reason=reason)
        return None
    row.update(subject_id=identity.subject_id, day=identity.day)
    if sheets.subjects_problem:
        row.update(status="rejected", reason=f"subject unknown: {sheets.subjects_problem}")
        return None
    if identity.subject_id not in set(sheets.subjects["subject_id"].astype(str)):
        hint = (
            f" (rows not used there: see {SUBJECTS_SHEET})" if sheets.notes[SUBJECTS_SHEET] else ""
        )
        row.update(
            status="rejected",
            reason=f"subject {identity.subject_id} is not in {SUBJECTS_SHEET}{hint}",
        )
        return None
    entry = {
        "file": rel,
        "kind": "fcs",
        "subject_id": identity.subject_id,
        "day": identity.day,
        "identity_from": identity.source,
    }
    if sheet_row is not None:
        for column in PER_SAMPLE_VALUES:
            entry[column] = sheet_row.get(column)
    return entry


def ingest(input_dir: str | Path, name_pattern: str = DEFAULT_NAME_PATTERN) -> IngestResult:
    """Account for every entry under ``input_dir`` and identify the usable files.

    Never raises on bad input: an odd entry, an unreadable sheet or row, an unknown
    subject, a duplicate subject/day or a name that says nothing becomes a ledger row.
    """
    root = Path(input_dir)
    regex = check_name_pattern(name_pattern)
    ledger = {entry.rel: _ledger_row(entry) for entry in scan_input(root)}
    sheets = load_sheets(root)
    fcs_files = {rel for rel, row in ledger.items() if row["kind"] == "fcs"}
    _sheet_verdicts(ledger, sheets, fcs_files)

    manifest_rows = []
    for rel, row in ledger.items():
        if row["status"] != "ok":
            continue
        if row["kind"] == "other":
            row.update(status="ignored", reason=NOT_AN_INPUT)
        elif row["kind"] == "qpcr":
            manifest_rows.append({"file": rel, "kind": "qpcr"})
        elif row["kind"] == "fcs":
            entry = _identify_fcs(row, rel, root, regex, sheets)
            if entry is not None:
                manifest_rows.append(entry)

    manifest = pd.DataFrame(manifest_rows, columns=MANIFEST_COLUMNS)
    manifest = _reject_duplicates(manifest, ledger)
    ledger_table = pd.DataFrame(list(ledger.values()), columns=LEDGER_COLUMNS)
    return IngestResult(
        ledger=ledger_table, manifest=manifest, subjects=sheets.subjects, samples=sheets.samples
    )


def _reject_duplicates(manifest: pd.DataFrame, ledger: dict[str, dict]) -> pd.DataFrame:
    """Two FCS files for one subject and day: neither can be trusted, both are refused."""
    fcs = manifest[manifest["kind"] == "fcs"]
    if fcs.empty:
        return manifest
    duplicated = fcs.duplicated(["subject_id", "day"], keep=False)
    drop = set()
    for key, group in fcs[duplicated].groupby(["subject_id", "day"]):
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

    Stage tables have the columns :data:`STAGE_LEDGER_COLUMNS` (stage optional). A stage
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
            reason = text(getattr(row, "reason", ""))
            stage = text(getattr(row, "stage", ""))
            current_status = ledger.at[file, "status"]
            current = text(ledger.at[file, "reason"])
            if status == "rejected" or current_status == "ok":
                if status == "rejected":
                    ledger.at[file, "status"] = "rejected"
                joined = "; ".join(r for r in (current, reason) if r)
                ledger.at[file, "reason"] = joined
                if stage:
                    ledger.at[file, "stage"] = stage
    return ledger.reset_index(drop=True)
