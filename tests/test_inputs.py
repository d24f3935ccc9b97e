"""Ingest: identity from names and samples.tsv, and every bad case in the ledger."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ckpk.errors import InputError
from ckpk.inputs import (
    DEFAULT_NAME_PATTERN,
    check_name_pattern,
    identify,
    ingest,
    merge_ledger,
    read_samples,
    read_subjects,
)

FCS_BYTES = b"FCS3.1    " + b" " * 50  # enough for ingest, which only sniffs the header


def _write(root: Path, rel: str, content: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)


def _folder(root: Path, samples: str | None = None) -> Path:
    _write(root, "subjects.tsv", "subject_id\tdose_level\tdose\nS01\tDL1\t1e5\nS02\tDL2\t3e5\n")
    if samples is not None:
        _write(root, "samples.tsv", samples)
    return root


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S01_D14", ("S01", 14.0)),
        ("S01_D-7", ("S01", -7.0)),
        ("SLE-003_D28.5_tube2", ("SLE-003", 28.5)),
        ("S01_D0", ("S01", 0.0)),
        ("Specimen_001_Tube_002", None),
        ("S01-D14", None),
    ],
)
def test_identity_from_name(name: str, expected: tuple | None) -> None:
    identity = identify(name, DEFAULT_NAME_PATTERN)
    if expected is None:
        assert identity is None
    else:
        assert (identity.subject_id, identity.day, identity.source) == (*expected, "name")


def test_sample_sheet_row_wins_over_name() -> None:
    row = pd.Series({"sample": "S01_D14", "subject_id": "S02", "day": 15.0})
    identity = identify("S01_D14", DEFAULT_NAME_PATTERN, row)
    assert (identity.subject_id, identity.day, identity.source) == ("S02", 15.0, "samples.tsv")
    # An empty row (only per-sample values) keeps the name's identity.
    row = pd.Series({"sample": "S01_D14", "subject_id": None, "day": None, "dna_ng": 50.0})
    assert identify("S01_D14", DEFAULT_NAME_PATTERN, row).source == "name"


def test_custom_pattern_and_bad_patterns() -> None:
    pattern = r"^CART(?P<subject_id>\d{3})-V(?P<day>\d+)"
    identity = identify("CART012-V28.fcs", pattern)
    assert (identity.subject_id, identity.day) == ("012", 28.0)
    with pytest.raises(InputError, match="day"):
        check_name_pattern(r"^(?P<subject_id>\w+)")
    with pytest.raises(InputError, match="not a regular expression"):
        check_name_pattern(r"^(?P<subject_id>\w+")


def test_ingest_identifies_files_and_rejects_each_bad_case(tmp_path: Path) -> None:
    root = _folder(
        tmp_path / "in",
        "sample\tsubject_id\tday\tbeads_per_test\tblood_ul\tlymphocytes_per_ul\n"
        "flow/Specimen_001_Tube_001.fcs\tS02\t7\t50000\t50\t\n"
        "S01_D14.fcs\t\t\t\t\t1200\n",
    )
    _write(root, "flow/S01_D14.fcs", FCS_BYTES)  # name, plus CBC count from the sheet
    _write(root, "flow/Specimen_001_Tube_001.fcs", FCS_BYTES)  # identity from the sheet
    _write(root, "flow/Specimen_002_Tube_001.fcs", FCS_BYTES)  # no identity at all
    _write(root, "flow/S09_D7.fcs", FCS_BYTES)  # subject not enrolled
    _write(root, "flow/a/S01_D28.fcs", FCS_BYTES)  # duplicate subject/day ...
    _write(root, "flow/b/S01_D28.fcs", FCS_BYTES)  # ... in another subfolder
    _write(root, "flow/S02_D1.fcs", b"this is not an FCS file")
    _write(root, "flow/notes.docx", b"PK\x03\x04")
    _write(root, "qpcr/plate1.txt", "* Experiment Type = Standard Curve\n")
    _write(root, "qpcr/.DS_Store", b"\x00\x00")
    _write(root, "README.txt", "hello")

    result = ingest(root)
    ledger = result.ledger.set_index("file")
    assert len(ledger) == 13  # every file, no more, no less
    assert ledger.loc["flow/S01_D14.fcs", "status"] == "ok"
    assert ledger.loc["flow/Specimen_001_Tube_001.fcs", "status"] == "ok"

    def reason(rel: str) -> str:
        assert ledger.loc[rel, "status"] == "rejected", rel
        return ledger.loc[rel, "reason"]

    assert "does not give subject and day" in reason("flow/Specimen_002_Tube_001.fcs")
    assert "S09 is not in subjects.tsv" in reason("flow/S09_D7.fcs")
    assert "duplicate subject/day" in reason("flow/a/S01_D28.fcs")
    assert "flow/a/S01_D28.fcs" in reason("flow/b/S01_D28.fcs")
    assert "not an FCS file" in reason("flow/S02_D1.fcs")
    for rel in ("flow/notes.docx", "qpcr/.DS_Store", "README.txt"):
        assert ledger.loc[rel, "status"] == "ignored"
        assert ledger.loc[rel, "kind"] == "other"
    assert ledger.loc["qpcr/plate1.txt", "kind"] == "qpcr"
    assert ledger["sha256"].str.fullmatch("[0-9a-f]{64}").all()

    manifest = result.manifest.set_index("file")
    assert set(manifest.index) == {
        "flow/S01_D14.fcs",
        "flow/Specimen_001_Tube_001.fcs",
        "qpcr/plate1.txt",
    }
    spec = manifest.loc["flow/Specimen_001_Tube_001.fcs"]
    assert (spec.subject_id, spec.day, spec.identity_from) == ("S02", 7.0, "samples.tsv")
    assert (spec.beads_per_test, spec.blood_ul) == (50000.0, 50.0)
    named = manifest.loc["flow/S01_D14.fcs"]
    assert (named.subject_id, named.day, named.identity_from) == ("S01", 14.0, "name")
    assert named.lymphocytes_per_ul == 1200.0


def test_a_bad_samples_cell_costs_its_row_only(tmp_path: Path) -> None:
    root = _folder(
        tmp_path, "sample\tdna_ng\tlymphocytes_per_ul\nS01_D14\tlots\t\nS01_D28.fcs\t\t1500\n"
    )
    _write(root, "flow/S01_D14.fcs", FCS_BYTES)
    _write(root, "flow/S01_D28.fcs", FCS_BYTES)
    result = ingest(root)
    ledger = result.ledger.set_index("file")
    assert ledger.loc["samples.tsv", "status"] == "ok"
    reason = ledger.loc["samples.tsv", "reason"]
    assert reason == "samples.tsv: line 2: dna_ng 'lots' is not a number (row not used)"
    assert ledger.loc["flow/S01_D14.fcs", "status"] == "ok"
    # The other row is still used.
    manifest = result.manifest.set_index("file")
    assert manifest.loc["flow/S01_D28.fcs", "lymphocytes_per_ul"] == 1500


def test_missing_subjects_sheet_rejects_fcs_files_without_crashing(tmp_path: Path) -> None:
    _write(tmp_path, "flow/S01_D14.fcs", FCS_BYTES)
    result = ingest(tmp_path)
    row = result.ledger.set_index("file").loc["flow/S01_D14.fcs"]
    assert row.status == "rejected" and "subjects.tsv is missing" in row.reason
    assert result.manifest.empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("subject\tdose_level\nS01\tDL1\n", "missing column"),
        ("subject_id\tdose_level\nS01\tDL1\nS01\tDL2\n", "listed twice"),
        ("subject_id\tdose_level\tinfusion_date\nS01\tDL1\t03/04/2024\n", "ISO date"),
        ("subject_id\tdose_level\tdose\nS01\tDL1\thigh\n", "not a number"),
        ("subject_id,dose_level\nS01,DL1\n", "not tab-separated"),
        ("subject_id\tdose_level\nS01\t\n", "dose_level is empty"),
    ],
)
def test_subjects_sheet_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "subjects.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_subjects(path)


def test_sheets_accept_bom_crlf_and_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "subjects.tsv"
    path.write_bytes("\ufeffsubject_id\tdose_level\tcohort\r\nS01\tDL1\tMünchen\r\n".encode())
    assert read_subjects(path).loc[0, "cohort"] == "München"
    path.write_bytes("subject_id\tdose_level\tcohort\nS01\tDL1\tMünchen\n".encode("cp1252"))
    assert read_subjects(path).loc[0, "cohort"] == "München"
    samples = tmp_path / "samples.tsv"
    samples.write_text("sample\tsubject_id\tday\nS01_D1\tS01\t\n")
    with pytest.raises(InputError, match="both subject_id and day"):
        read_samples(samples)


def test_merge_ledger_applies_stage_verdicts() -> None:
    ingest_ledger = pd.DataFrame(
        {
            "file": ["a.fcs", "b.fcs", "c.txt"],
            "kind": ["fcs", "fcs", "qpcr"],
            "status": ["ok", "rejected", "ok"],
            "reason": ["", "duplicate subject/day", ""],
            "sha256": ["0" * 64] * 3,
            "stage": ["ingest"] * 3,
        }
    )
    flow = pd.DataFrame(
        {
            "file": ["a.fcs", "b.fcs"],
            "status": ["rejected", "rejected"],
            "reason": ["truncated", "x"],
            "stage": ["flow", "flow"],
        }
    )
    qpcr = pd.DataFrame(
        {"file": ["c.txt"], "status": ["ok"], "reason": ["well 95 absent"], "stage": ["qpcr"]}
    )
    merged = merge_ledger(ingest_ledger, flow, qpcr).set_index("file")
    assert merged.loc["a.fcs", "status"] == "rejected"
    assert merged.loc["a.fcs", "reason"] == "truncated"
    assert merged.loc["b.fcs", "reason"] == "duplicate subject/day; x"
    assert merged.loc["c.txt", "status"] == "ok"
    assert merged.loc["c.txt", "reason"] == "well 95 absent"


def test_clinical_sheet_bad_rows_go_to_the_ledger(tmp_path: Path) -> None:
    root = _folder(
        tmp_path,
        None,
    )
    _write(root, "flow/S01_D14.fcs", FCS_BYTES)
    _write(
        root,
        "clinical.tsv",
        "subject_id\tendpoint\tday\tvalue\n"
        "S01\tSRI-4 response\t90\tyes\n"
        "S77\tSRI-4 response\t90\tno\n"
        "S02\tSRI-4 response\tD90\tno\n"
        "S02\tCRS grade\t28\t\n",
    )
    result = ingest(root)
    row = result.ledger.set_index("file").loc["clinical.tsv"]
    assert row["kind"] == "sheet" and row["status"] == "ok"
    assert "line 3: subject S77 is not in subjects.tsv (row not used)" in row["reason"]
    assert "line 4: day 'D90' is not a number" in row["reason"]
    assert "line 5: value is empty" in row["reason"]
    from ckpk.inputs import load_sheets

    clinical = load_sheets(root).clinical
    assert list(clinical["subject_id"]) == ["S01"] and clinical.loc[0, "day"] == 90
