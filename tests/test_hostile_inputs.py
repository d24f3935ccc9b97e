"""Hostile and messy input folders, one case per test, each built in the test.

The workflow-level sweep (the whole run on such a folder, and the property-based test
over generated names and cells) is in test_hostile_workflow.py.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ckpk.cli import main
from ckpk.errors import InputError
from ckpk.inputs import ingest, read_samples, read_subjects, scan_input
from ckpk.qpcr import read_plate
from ckpk.qpcr.stage import run_qpcr
from ckpk.simulate import SimulationSettings, simulate_trial

DATA = Path(__file__).parent / "data"
FCS_BYTES = b"FCS3.1    " + b" " * 50  # enough for ingest, which only sniffs the header
SUBJECTS = "subject_id\tdose_level\nS01\tDL1\nS02\tDL2\n"


def _write(root: Path, rel: str | bytes, content: bytes | str = FCS_BYTES) -> None:
    path = os.path.join(os.fsencode(root), rel if isinstance(rel, bytes) else os.fsencode(rel))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)


def _folder(root: Path, subjects: str = SUBJECTS, samples: str | None = None) -> Path:
    _write(root, "subjects.tsv", subjects)
    if samples is not None:
        _write(root, "samples.tsv", samples)
    _write(root, "flow/S01_D7.fcs")
    return root


def _ledger(root: Path) -> pd.DataFrame:
    return ingest(root).ledger.set_index("file")


# ------------------------------------------------------------------- identifiers
@pytest.mark.parametrize("subject", ["../../../victim", "A/B", "..", ".hidden", "-x", "a b"])
def test_subject_ids_that_would_name_a_path_are_refused(tmp_path: Path, subject: str) -> None:
    root = _folder(
        tmp_path / "in",
        SUBJECTS + f"{subject}\tDL1\n",
        samples=f"sample\tsubject_id\tday\nflow/x.fcs\t{subject}\t7\n",
    )
    _write(root, "flow/x.fcs")
    result = ingest(root)
    assert subject not in set(result.subjects["subject_id"])
    assert set(result.subjects["subject_id"]) == {"S01", "S02"}  # the other rows are used
    ledger = result.ledger.set_index("file")
    assert "line 4: subject_id" in ledger.loc["subjects.tsv", "reason"]
    assert ledger.loc["subjects.tsv", "status"] == "ok"
    assert ledger.loc["flow/x.fcs", "status"] == "rejected"
    assert "samples.tsv row is not used" in ledger.loc["flow/x.fcs", "reason"]
    assert set(result.manifest["subject_id"]) == {"S01"}


# ---------------------------------------------------------------- links, special
def test_links_and_special_files_are_never_followed_out_or_opened(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.fcs").write_bytes(FCS_BYTES)
    root = _folder(tmp_path / "in")
    _write(root, "flow/S02/S02_D1.fcs")
    os.symlink(outside / "secret.fcs", root / "flow" / "S01_D14.fcs")
    os.symlink(outside, root / "flow" / "elsewhere")
    os.symlink(root / "flow" / "S02", root / "flow" / "S02_again")
    os.symlink(root / "flow" / "S02" / "S02_D1.fcs", root / "flow" / "S02_D28.fcs")
    os.symlink(tmp_path / "gone.fcs", root / "flow" / "S01_D21.fcs")
    os.symlink("/dev/zero", root / "qpcr_zero.txt")
    (root / "qpcr").mkdir()
    os.symlink("/dev/zero", root / "qpcr" / "plate.txt")
    os.mkfifo(root / "flow" / "S01_D42.fcs")  # opening a FIFO would hang ingest

    ledger = _ledger(root)
    assert set(ledger.index) == {e.rel for e in scan_input(root)}
    expectations = {
        "flow/S01_D14.fcs": ("rejected", "a link to a file outside the input folder"),
        "flow/elsewhere": ("rejected", "a link to a folder outside the input folder"),
        "flow/S02_again": ("ignored", "a link to a folder inside the input folder"),
        "flow/S01_D21.fcs": ("rejected", "which does not exist"),
        "qpcr/plate.txt": ("rejected", "outside the input folder (/dev/zero)"),
        "qpcr_zero.txt": ("rejected", "outside the input folder (/dev/zero)"),
        "flow/S01_D42.fcs": ("rejected", "not a regular file"),
        "flow/S02_D28.fcs": ("ok", ""),  # a link to a file inside the folder is read
    }
    for rel, (status, words) in expectations.items():
        assert ledger.loc[rel, "status"] == status, rel
        assert words in (ledger.loc[rel, "reason"] or ""), rel
    assert "secret" not in " ".join(ledger.index)  # the outside folder was not walked


# ----------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "words"),
    [
        (b"flow/S01_D{7}.fcs", "'{' or '}'"),
        (b"flow/notes {draft}.txt", "'{' or '}'"),
        (b"flow/S01_D9\xe9.fcs", "not valid UTF-8"),
        (b"flow/S01_D10\t.fcs", "control character"),
        (b"flow/S01_D11\n.fcs", "control character"),
    ],
)
def test_odd_file_names_are_ledger_rows_not_crashes(tmp_path, name: bytes, words: str) -> None:
    root = _folder(tmp_path / "in")
    _write(root, name)
    ledger = _ledger(root)
    odd = [rel for rel in ledger.index if rel not in ("subjects.tsv", "flow/S01_D7.fcs")]
    assert len(odd) == 1
    row = ledger.loc[odd[0]]
    assert row["status"] == "rejected" and words in row["reason"]
    assert odd[0].isprintable()  # escaped, so the ledger stays one line per entry
    assert ledger.loc["flow/S01_D7.fcs", "status"] == "ok"


# ----------------------------------------------------------------------- sheets
def test_bad_day_costs_its_row_only(tmp_path: Path) -> None:
    samples = (
        "sample\tsubject_id\tday\tbeads_per_test\tblood_ul\tdna_ng\n"
        "flow/S01_D7.fcs\t\t\t50000\t50\t\n"
        "flow/a.fcs\tS01\tinf\t\t\t\n"
        "flow/b.fcs\tS01\t1e308\t\t\t\n"
        "flow/c.fcs\tS01\tD7\t\t\t\n"
        "S01_D14\t\t\t\t\t150\n"
    )
    root = _folder(tmp_path / "in", samples=samples)
    for name in ("a", "b", "c"):
        _write(root, f"flow/{name}.fcs")
    result = ingest(root)
    reason = result.ledger.set_index("file").loc["samples.tsv", "reason"]
    assert "line 3: day 'inf' is not a finite number (row not used)" in reason
    assert "line 4: day '1e308' is not a study day" in reason
    assert "line 5: day 'D7' is not a number (row not used)" in reason
    # The good rows still give their bead count and DNA mass.
    row = result.manifest.set_index("file").loc["flow/S01_D7.fcs"]
    assert (row["beads_per_test"], row["blood_ul"]) == (50000, 50)
    assert result.samples.set_index("sample").loc["S01_D14", "dna_ng"] == 150
    assert set(result.manifest["file"]) == {"flow/S01_D7.fcs"}


def test_infinite_bead_count_is_refused_not_reported_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "samples.tsv"
    path.write_text("sample\tbeads_per_test\tblood_ul\nflow/x.fcs\tinf\t50\n")
    with pytest.raises(InputError, match="beads_per_test 'inf' is not a finite number"):
        read_samples(path)


def test_utf16_and_quoted_sheets(tmp_path: Path) -> None:
    path = tmp_path / "subjects.tsv"
    text = 'subject_id\tdose_level\tcohort\r\n"S01"\t"DL1"\t"a ""quoted"" name"\r\n'
    path.write_bytes(text.encode("utf-16"))  # Excel's "Unicode Text": UTF-16 with a BOM
    table = read_subjects(path)
    assert table.loc[0, "subject_id"] == "S01" and table.loc[0, "dose_level"] == "DL1"
    assert table.loc[0, "cohort"] == 'a "quoted" name'


def test_undecodable_byte_in_a_sheet_is_read_not_a_crash(tmp_path: Path) -> None:
    """0x81 is undefined in Windows-1252: the sheet is still read (as Latin-1)."""
    path = tmp_path / "subjects.tsv"
    path.write_bytes(b"subject_id\tdose_level\tcohort\nS01\tDL1\tM\x81nchen\n")
    assert read_subjects(path).loc[0, "subject_id"] == "S01"


def test_sample_paths_that_name_no_file(tmp_path: Path) -> None:
    samples = (
        "sample\tsubject_id\tday\tbeads_per_test\tblood_ul\n"
        "flow\\S02\\S02_D1.fcs\t\t\t40000\t50\n"  # Windows path: normalised, used
        "C:\\data\\S01_D7.fcs\t\t\t1\t1\n"
        "flow/../S01_D7.fcs\t\t\t1\t1\n"
        "flow/S02\t\t\t1\t1\n"
        "flow/missing.fcs\t\t\t1\t1\n"
    )
    root = _folder(tmp_path / "in", samples=samples)
    _write(root, "flow/S02/S02_D1.fcs")
    result = ingest(root)
    reason = result.ledger.set_index("file").loc["samples.tsv", "reason"]
    assert "'C:/data/S01_D7.fcs' is an absolute path" in reason
    assert "'flow/../S01_D7.fcs' leaves the input folder" in reason
    assert "'flow/S02' names a folder" in reason
    assert "'flow/missing.fcs' names no FCS file" in reason
    row = result.manifest.set_index("file").loc["flow/S02/S02_D1.fcs"]
    assert row["beads_per_test"] == 40000


# ------------------------------------------------------------------------- qPCR
def _qs_export(rows: list[tuple[str, str, str, str, str]]) -> str:
    header = "Well\tWell Position\tOmit\tSample Name\tTarget Name\tTask\tReporter\tCT\tQuantity"
    lines = ["* Instrument Type = QuantStudio(TM) 7 Flex System", "", "[Results]", header]
    for i, (pos, sample, task, ct, qty) in enumerate(rows, start=1):
        lines.append("\t".join([str(i), pos, "false", sample, "CAR", task, "FAM", ct, qty]))
    return "\n".join(lines) + "\n"


def _standards(slope: float = -3.32, intercept: float = 40.0) -> list[tuple]:
    rows = []
    for i, copies in enumerate((1e6, 1e5, 1e4, 1e3, 1e2)):
        cq = intercept + slope * math.log10(copies)
        rows.append((f"A{i + 1}", "STD", "STANDARD", f"{cq:.3f}", f"{copies:,.3f}"))
    return rows


def test_implausible_cq_and_quantities_are_flagged_wells(tmp_path: Path) -> None:
    rows = _standards() + [
        ("A6", "STD", "STANDARD", "21.000", "-100.000"),  # negative standard quantity
        ("B1", "S01_D7", "UNKNOWN", "30,755", ""),  # thousands separator in a Cq
        ("B2", "S01_D7", "UNKNOWN", "1,234.5", ""),
        ("B3", "S01_D7", "UNKNOWN", "99.000", ""),  # no run has 99 cycles
        ("B4", "S01_D7", "UNKNOWN", "30.100", ""),
    ]
    path = tmp_path / "plate.txt"
    path.write_text(_qs_export(rows))
    wells = read_plate(path).set_index("well")
    for well, words in {
        "A6": "quantity '-100.000' is not a positive number",
        "B1": "Cq '30,755' holds a grouping mark",
        "B2": "Cq '1,234.5' holds a grouping mark",
        "B3": "Cq 99 outside the plausible range 0–45",
    }.items():
        assert wells.loc[well, "omit"], well
        assert words in wells.loc[well, "flag"], well
    assert np.isnan(wells.loc["B1", "cq"]) and np.isnan(wells.loc["B2", "cq"])
    assert not wells.loc["B4", "omit"] and wells.loc["B4", "flag"] == ""
    # A configured range moves the limit.
    assert not read_plate(path, cq_range=(0, 100)).set_index("well").loc["B3", "omit"]

    subjects = pd.DataFrame({"subject_id": ["S01"], "dose_level": ["DL1"]})
    result = run_qpcr(
        [(path, "qpcr/plate.txt")], subjects, None, r"^(?P<subject_id>S\d+)_D(?P<day>\d+)", "CAR"
    )
    note = result.ledger.set_index("file").loc["qpcr/plate.txt", "reason"]
    assert note.startswith("4 well(s) left out as implausible (A6: quantity")
    transgene = result.transgene.set_index("sample").loc["S01_D7"]
    assert transgene["n_rep"] == 1  # only B4 is a replicate
    curve = result.curves.set_index("target").loc["CAR"]
    assert curve["lowest_standard"] == 100  # the negative standard did not move the LLOQ


def test_zip_bomb_is_refused_unread(tmp_path: Path) -> None:
    bomb = DATA / "qpcr" / "zip_bomb.rdml"
    assert bomb.stat().st_size < 400_000  # small in the repository, 262 MB unzipped
    with pytest.raises(InputError, match=r"unpacks to 262 MB .* qpcr.max_unzipped_mb \(200 MB\)"):
        read_plate(bomb)
    # The limit is configurable: a genuine 5 MB-unzipped RDML passes 10 MB, not 1 MB.
    real = DATA / "shared" / "data" / "qpcr" / "rdml" / "lc96_bACTXY.rdml"
    assert len(read_plate(real, max_unzipped_mb=10))
    with pytest.raises(InputError, match="max_unzipped_mb"):
        read_plate(real, max_unzipped_mb=1)
    subjects = pd.DataFrame({"subject_id": ["S01"], "dose_level": ["DL1"]})
    result = run_qpcr(
        [(bomb, "qpcr/zip_bomb.rdml")], subjects, None, r"(?P<subject_id>S\d+)_D(?P<day>\d+)", "CAR"
    )
    row = result.ledger.set_index("file").loc["qpcr/zip_bomb.rdml"]
    assert row["status"] == "rejected" and "decompression bomb" in row["reason"]


@pytest.fixture(scope="module")
def tiny_trial(tmp_path_factory) -> Path:
    trial = tmp_path_factory.mktemp("tiny") / "trial"
    simulate_trial(trial, SimulationSettings(n_subjects=2, seed=7, events_per_file=1000, workers=1))
    return trial


def test_plates_sharing_a_name_are_never_merged(tiny_trial: Path, tmp_path: Path) -> None:
    """A plate is one file: two exports with one stem stay two plates, each giving the
    copies it gives alone (a merge would pool the standards and the replicates)."""
    plate = sorted((tiny_trial / "qpcr").iterdir())[0]
    subjects = read_subjects(tiny_trial / "subjects.tsv")
    samples = read_samples(tiny_trial / "samples.tsv")
    pattern = r"^(?P<subject_id>[A-Za-z0-9-]+)_D(?P<day>-?\d+(\.\d+)?)"
    alone = run_qpcr([(plate, "qpcr/x")], subjects, samples, pattern, "CAR")
    n_wells = len(alone.wells)
    base = alone.transgene.set_index("sample")["copies_per_ug"]
    for names in (("qpcr/PCR01.txt", "qpcr/PCR01.csv"), ("qpcr/a/P1.txt", "qpcr/b/P1.txt")):
        pairs = []
        for name in names:
            copy = tmp_path / name.replace("/", "_") / Path(name).name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(plate, copy)
            pairs.append((copy, name))
        result = run_qpcr(pairs, subjects, samples, pattern, "CAR")
        ids = sorted(set(result.wells["plate"]))
        assert len(ids) == 2, ids
        assert (result.wells.groupby("plate").size() == n_wells).all()
        sources = result.wells.groupby("plate")["source_file"].unique()
        assert sorted(s[0] for s in sources) == sorted(names)  # traceable to the file
        assert set(result.curves["plate"]) == set(ids)
        for plate_id in ids:
            rows = result.transgene[result.transgene["plate"] == plate_id]
            copies = rows.set_index("sample")["copies_per_ug"]
            pd.testing.assert_series_equal(copies.sort_index(), base.sort_index())


# --------------------------------------------------------------------- FCS, CLI
def test_duplicate_channel_name_is_named(tiny_trial: Path, tmp_path: Path) -> None:
    import flowio

    from ckpk.flow.fcs import read_fcs

    source = next((tiny_trial / "flow" / "S01").glob("*.fcs"))
    data = flowio.FlowData(str(source))
    names = [data.channels[k]["pnn"] for k in sorted(data.channels, key=int)]
    events = np.reshape(np.array(data.events), (-1, data.channel_count))
    events = np.hstack([events, events[:, [3]]])
    with open(tmp_path / "dup.fcs", "wb") as handle:
        flowio.create_fcs(handle, events.flatten().tolist(), channel_names=names + [names[3]])
    with pytest.raises(InputError, match=rf"'{names[3]}' \(P4, P{len(names) + 1}\)"):
        read_fcs(tmp_path / "dup.fcs")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["simulate", "{out}", "--subjects", "0"], "--subjects: must be at least 1"),
        (["simulate", "{out}", "--subjects", "-2"], "--subjects: must be at least 1"),
        (["simulate", "{out}", "--events", "-5"], "--events: must be at least 1000"),
        (["simulate", "/proc/ckpk-test", "--subjects", "1", "--events", "1000"], "/proc/"),
        (["nca", "{empty}", "-o", "{out}"], "the file is empty"),
        (["fit", "{table}", "-o", "{out}", "--end", "nan"], "--end: must be a positive"),
        (["fit", "{table}", "-o", "{out}", "--end", "-5"], "--end: must be a positive"),
        (["fit", "{table}", "-o", "{out}", "--end", "0"], "--end: must be a positive"),
        (["nca", "{table}", "-o", "{table}"], "is the input table"),
        (["fit", "{table}", "-o", "{table}"], "is the input table"),
        (["nca", "{table}", "-o", "/proc/ckpk/out.tsv"], "/proc/ckpk"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(tmp_path: Path, argv, words) -> None:
    table = tmp_path / "conc.tsv"
    table.write_text("subject_id\tanalyte\tday\tvalue\tblq\nS01\tx\t0\t1\tfalse\n")
    (tmp_path / "empty.tsv").write_text("")
    out = tmp_path / "out"
    args = [a.format(out=out, empty=tmp_path / "empty.tsv", table=table) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "ckpk.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing half-written
    assert table.read_text().startswith("subject_id")  # the input is untouched


def test_cli_main_returns_2_for_refusals(tmp_path: Path) -> None:
    table = tmp_path / "conc.tsv"
    table.write_text("subject_id\tanalyte\tday\tvalue\tblq\nS01\tx\t0\t1\tfalse\n")
    assert main(["nca", str(table), "-o", str(table)]) == 2


def test_fit_flags_an_infinite_value(tmp_path: Path) -> None:
    """Like NCA, the model fit says that an infinite reading was left out."""
    table = tmp_path / "conc.tsv"
    rows = [(0, "1"), (7, "500"), (14, "inf"), (21, "100"), (28, "40"), (56, "10")]
    table.write_text(
        "subject_id\tanalyte\tday\tvalue\tblq\tlloq\n"
        + "".join(f"S1\tx\t{d}\t{v}\tfalse\t1\n" for d, v in rows)
    )
    assert main(["fit", str(table), "-o", str(tmp_path / "fit.tsv")]) == 0
    fit = pd.read_csv(tmp_path / "fit.tsv", sep="\t")
    assert "day 14: infinite value ignored" in fit.loc[0, "flags"]
    assert fit.loc[0, "n_obs"] == 5
