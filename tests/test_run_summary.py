"""The lab's end-of-run summary and the start-up check of the input folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ckpk.cli import main
from ckpk.errors import InputError
from ckpk.inputs import check_input_folder
from ckpk.run_summary import FIRST_REJECTIONS, summarise_run
from ckpk.tables import write_tsv


def _ledger_rows() -> list[dict]:
    rows = [{"file": f"flow/S01_D{d}.fcs", "kind": "fcs", "status": "ok"} for d in range(4)]
    rows += [
        {"file": f"flow/bad{i}.fcs", "kind": "fcs", "status": "rejected", "reason": f"why {i}"}
        for i in range(7)
    ]
    rows += [
        {"file": "qpcr/P1.txt", "kind": "qpcr", "status": "ok"},
        {"file": "qpcr/P2.csv", "kind": "qpcr", "status": "rejected", "reason": "x " * 200},
        {"file": "subjects.tsv", "kind": "sheet", "status": "ok"},
        {"file": "notes.txt", "kind": "other", "status": "ignored", "reason": "not an input"},
    ]
    return rows


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_tsv(pd.DataFrame(_ledger_rows()), tmp_path / "ledger.tsv")
    nca = pd.DataFrame(
        {
            "subject_id": ["S01", "S01", "S02"],
            "analyte": ["car_per_ul", "car_copies_per_ug", "car_per_ul"],
            "cmax": [12.0, 300.0, 0.0],
        }
    )
    (tmp_path / "pk").mkdir()
    write_tsv(nca, tmp_path / "pk" / "nca.tsv")
    (tmp_path / "ingest").mkdir()
    subjects = pd.DataFrame({"subject_id": ["S01", "S02", "S03"], "dose_level": ["1", "1", "2"]})
    write_tsv(subjects, tmp_path / "ingest" / "subjects.tsv")
    return tmp_path


def test_counts_by_kind_and_status(results: Path) -> None:
    text = summarise_run(results, report=results / "report.html")
    assert text.startswith("ckpk: the run finished")
    assert "fcs      11 found: 4 used, 7 rejected" in text
    assert "qpcr      2 found: 1 used, 1 rejected" in text
    assert "sheet     1 found: 1 used" in text
    assert "other     1 found: 1 ignored" in text
    assert f"report: {results / 'report.html'}" in text


def test_first_rejections_with_reasons(results: Path) -> None:
    text = summarise_run(results)
    assert "first rejections (8 in all" in text
    shown = [line for line in text.splitlines() if line.startswith("    flow/bad")]
    assert len(shown) == FIRST_REJECTIONS == 5
    assert shown[0] == "    flow/bad0.fcs: why 0"


def test_long_reason_cut_to_one_line(tmp_path: Path) -> None:
    reason = "the event data\ncould not be decoded " * 20
    rows = [{"file": "flow/a.fcs", "kind": "fcs", "status": "rejected", "reason": reason}]
    write_tsv(pd.DataFrame(rows), tmp_path / "ledger.tsv")
    line = next(x for x in summarise_run(tmp_path).splitlines() if "flow/a.fcs" in x)
    assert line.endswith("…") and len(line) < 200


def test_subjects_with_and_without_pk(results: Path) -> None:
    text = summarise_run(results)
    assert "PK: 1 of 2 subjects with quantifiable CAR T (car_copies_per_ug, car_per_ul)" in text
    assert "no quantifiable sample: S02" in text
    assert "no measurement at all: S03" in text
    assert "report: not written by this run" in text


def test_failed_run_uses_the_ingest_ledger(tmp_path: Path) -> None:
    (tmp_path / "ingest").mkdir()
    write_tsv(pd.DataFrame(_ledger_rows()), tmp_path / "ingest" / "ledger.tsv")
    text = summarise_run(tmp_path, failed=True)
    assert text.startswith("ckpk: the run FAILED")
    assert "ingest verdicts only" in text
    assert "PK: no NCA table" in text


def test_nothing_written(tmp_path: Path) -> None:
    text = summarise_run(tmp_path / "results", failed=True)
    assert "the run stopped before any file was read" in text


def test_cli_summary(results: Path, capsys) -> None:
    (results / "report.html").write_text("<html></html>")
    assert main(["summary", str(results)]) == 0
    out = capsys.readouterr().out
    assert "fcs      11 found" in out and f"report: {results / 'report.html'}" in out
    assert main(["summary", str(results / "nowhere")]) == 2


def _folder(tmp_path: Path, sheet: str | None, files: dict[str, bytes]) -> Path:
    root = tmp_path / "trial"
    root.mkdir()
    if sheet is not None:
        (root / "subjects.tsv").write_text(sheet, encoding="utf-8")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


FCS = {"flow/S01_D0.fcs": b"FCS3.1    ..."}


def test_input_folder_ready(tmp_path: Path) -> None:
    root = _folder(tmp_path, "subject_id\tdose_level\nS01\tDL1\n", FCS)
    check_input_folder(root)  # no exception


@pytest.mark.parametrize(
    ("sheet", "files", "message"),
    [
        (None, FCS, "subjects.tsv is missing"),
        ("subject_id\tdose_level\n", FCS, "subjects.tsv lists no subject"),
        ("subject\tlevel\nS01\t1\n", FCS, "subjects.tsv: missing column(s) subject_id"),
        ("subject_id\tdose_level\nS01\tDL1\n", {"notes.txt": b"x"}, "holds no instrument file"),
        ("subject_id\tdose_level\nS01\tDL1\n", {"qpcr/notes.pdf": b"x"}, "no instrument file"),
    ],
)
def test_input_folder_refused(tmp_path: Path, sheet, files, message) -> None:
    root = _folder(tmp_path, sheet, files)
    with pytest.raises(InputError) as error:
        check_input_folder(root)
    text = str(error.value)
    assert message in text and "\n" not in text
    assert str(root) in text  # names the file or folder


def test_qpcr_export_alone_is_enough(tmp_path: Path) -> None:
    root = _folder(tmp_path, "subject_id\tdose_level\nS01\tDL1\n", {"qpcr/P1.txt": b"x"})
    check_input_folder(root)
