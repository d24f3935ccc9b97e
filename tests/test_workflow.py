"""End to end: snakemake on a small simulated trial.

The expected ledger comes from the simulator's own record of what it wrote and which
problems it planted (truth/problems.tsv), not from an earlier run of the workflow.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ckpk.simulate import SimulationSettings, simulate_trial
from ckpk.tables import read_tsv

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("workflow")]


def run_snakemake(*config: str, targets: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", *config, *targets]
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=1200)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_trial(tmp_path_factory) -> Path:
    trial = tmp_path_factory.mktemp("e2e") / "trial"
    simulate_trial(trial, SimulationSettings(n_subjects=3, seed=5, events_per_file=3000, workers=1))
    return trial


@pytest.fixture(scope="module")
def workflow_run(small_trial: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    before = _digest(small_trial)
    results = tmp_path_factory.mktemp("e2e_results") / "results"
    proc = run_snakemake(f"input_dir={small_trial}", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Nothing is written inside the input folder.
    assert _digest(small_trial) == before
    return results, proc


@pytest.fixture(scope="module")
def workflow_report(small_trial: Path, workflow_run) -> Path:
    """Snakemake's report of that run, generated once for the tests that read it."""
    results, _ = workflow_run
    report = results.parent / "report.html"
    proc = run_snakemake(
        f"input_dir={small_trial}", f"results_dir={results}", "--report", str(report)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return report


def test_ledger_accounts_for_every_file(small_trial: Path, workflow_run) -> None:
    results, _ = workflow_run
    ledger = read_tsv(results / "ledger.tsv")
    files = sorted(p.relative_to(small_trial).as_posix() for p in small_trial.rglob("*"))
    files = [f for f in files if (small_trial / f).is_file()]
    assert sorted(ledger["file"]) == files
    assert list(ledger.columns[:5]) == ["file", "kind", "status", "reason", "sha256"]
    by_file = ledger.set_index("file")
    problems = read_tsv(small_trial / "truth" / "problems.tsv")
    ingest_problems = {
        "truncated FCS file": "truncated",
        "unknown subject S99": "not in subjects.tsv",
        "file name gives no subject/day and samples.tsv has no row": "does not give subject",
        "duplicate subject/day": "duplicate subject/day",
        "not an instrument file": "not an FCS file under flow/",
    }
    for row in problems.itertuples():
        if row.problem in ingest_problems:
            assert by_file.loc[row.file, "status"] in ("rejected", "ignored")
            assert ingest_problems[row.problem] in by_file.loc[row.file, "reason"]
    truth_files = [f for f in files if f.startswith("truth/")]
    assert (by_file.loc[truth_files, "status"] == "ignored").all()
    assert by_file.loc["subjects.tsv", "kind"] == "sheet"
    # Every planted problem is caught, nothing else is refused.
    refused = set(by_file.index[by_file["status"] == "rejected"])
    assert refused == set(problems.loc[problems["problem"] != "not an instrument file", "file"])


def test_stage_tables_cover_every_accepted_file(small_trial: Path, workflow_run) -> None:
    results, _ = workflow_run
    ledger = read_tsv(results / "ledger.tsv")
    ok = ledger[ledger["status"] == "ok"]
    car_t = read_tsv(results / "flow" / "car_t.tsv")
    assert set(car_t["file"]) == set(ok.loc[ok["kind"] == "fcs", "file"])
    gate_counts = read_tsv(results / "flow" / "gate_counts.tsv")
    assert set(gate_counts["file"]) == set(car_t["file"])
    curves = read_tsv(results / "qpcr" / "standard_curves.tsv")
    plates = read_tsv(small_trial / "truth" / "plates.tsv")
    assert set(curves["plate"]) == set(plates["plate"])
    transgene = read_tsv(results / "qpcr" / "transgene.tsv")
    truth = read_tsv(small_trial / "truth" / "qpcr.tsv")
    assert len(transgene) == len(truth)
    assert len(list((results / "qpcr" / "curves").glob("*.png"))) == len(plates)
    qc = list((results / "flow" / "qc").rglob("*.png"))
    assert len(qc) == len(car_t)


def test_manifest_identifies_good_files(small_trial: Path, workflow_run) -> None:
    results, _ = workflow_run
    manifest = read_tsv(results / "ingest" / "manifest.tsv")
    truth = read_tsv(small_trial / "truth" / "flow.tsv")
    problems = set(read_tsv(small_trial / "truth" / "problems.tsv")["file"])
    fcs = manifest[manifest["kind"] == "fcs"].set_index("file")
    good = truth[~truth["file"].isin(problems)].set_index("file")
    # The truncated file passes ingest (it starts with FCS); the flow stage rejects it.
    assert set(good.index) <= set(fcs.index)
    for rel, row in good.iterrows():
        assert fcs.loc[rel, "subject_id"] == row["subject_id"]
        assert fcs.loc[rel, "day"] == row["day"]
    plates = read_tsv(small_trial / "truth" / "plates.tsv")
    assert set(manifest.loc[manifest["kind"] == "qpcr", "file"]) == set(plates["file"])


PATIENT_STRINGS = (b"DOE^JANE", b"MRN-", b"Mustermann", b"1984-02-29")


def test_pk_tables_written(workflow_run) -> None:
    results, _ = workflow_run
    concentrations = read_tsv(results / "pk" / "concentrations.tsv")
    nca = read_tsv(results / "pk" / "nca.tsv")
    fits = read_tsv(results / "pk" / "model_fits.tsv")
    pairs = concentrations[concentrations["analyte"] != "b_cells_per_ul"][
        ["subject_id", "analyte"]
    ].drop_duplicates()
    assert len(nca) == len(pairs) == len(fits)
    assert set(read_tsv(results / "pk" / "summary_by_dose.tsv")["dose_level"]) == set(
        nca["dose_level"]
    )
    assert len(list((results / "pk" / "plots" / "fits").glob("*.png"))) == len(pairs)


def test_no_patient_identity_in_results_or_report(workflow_run, workflow_report) -> None:
    """Free-text FCS keywords ($SRC, $COM, $CELLS, $OP, PATIENT ID) hold a planted name."""
    results, _ = workflow_run
    report = workflow_report
    files = [p for p in results.rglob("*") if p.is_file()] + [report]
    assert len(files) > 50
    for path in files:
        data = path.read_bytes()
        for secret in PATIENT_STRINGS:
            assert secret not in data, (path, secret)


def test_rerun_does_nothing_and_tables_are_byte_identical(
    small_trial: Path, workflow_run, tmp_path: Path
) -> None:
    results, _ = workflow_run
    again = run_snakemake(f"input_dir={small_trial}", f"results_dir={results}", "--dry-run")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    fresh = tmp_path / "results"
    # Without QC plots (the slow part): the tables must not depend on them.
    proc = run_snakemake(
        f"input_dir={small_trial}", f"results_dir={fresh}", "flow={qc_plots: false}"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Tables, not the run's own measurements (logs/benchmarks/ holds each job's time and
    # memory, which differ from run to run by nature).
    tables = [p.relative_to(results) for p in results.rglob("*.tsv") if "logs" not in p.parts]
    assert tables
    for rel in tables:
        assert (fresh / rel).read_bytes() == (results / rel).read_bytes(), rel


def test_bad_config_stops_before_any_job_naming_the_key(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = run_snakemake(f"input_dir={tmp_path}", f"results_dir={results}", "nca={auc_method: log}")
    assert proc.returncode != 0
    assert "config key nca.auc_method" in proc.stderr
    assert not results.exists()
    proc = run_snakemake(f"input_dir={tmp_path / 'nowhere'}", f"results_dir={results}")
    assert proc.returncode != 0 and "config key input_dir" in proc.stderr


def test_demo_is_generated_when_absent(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    results = tmp_path / "results"
    proc = run_snakemake(
        f"input_dir={demo}",
        f"results_dir={results}",
        f"demo={{dir: {demo}, subjects: 2, events: 2000}}",
        "flow={qc_plots: false}",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (demo / "subjects.tsv").exists() and not (tmp_path / "demo.partial").exists()
    ledger = read_tsv(results / "ledger.tsv")
    assert (ledger["kind"] == "fcs").sum() >= 20


def test_b_cell_aplasia_matches_the_simulated_truth(small_trial: Path, workflow_run) -> None:
    """Onset and reconstitution against the simulator's true B-cell curve (truth/b_cells.tsv)
    and its per-visit truth (truth/flow.tsv: true B cells/uL and B events drawn)."""
    results, _ = workflow_run
    observed = read_tsv(results / "pd" / "b_cells.tsv").set_index("subject_id")
    truth = read_tsv(small_trial / "truth" / "b_cells.tsv").set_index("subject_id")
    visits = read_tsv(small_trial / "truth" / "flow.tsv")
    for subject, true in truth.iterrows():
        row = observed.loc[subject]
        days = visits[(visits["subject_id"] == subject) & (visits["day"] > 0)].sort_values("day")
        if not true["responder"]:
            assert math.isnan(row["aplasia_onset_day"]), subject  # B cells never depleted
            continue
        below = days[days["b_cells_per_ul"] < 1.0]["day"]
        clearly_above = days[days["b_events"] >= 40]["day"]
        # Declared aplastic by the first visit truly below 1/uL, never while clearly above.
        assert row["aplasia_onset_day"] <= below.min(), subject
        before = clearly_above[clearly_above < below.min()]
        assert before.empty or row["aplasia_onset_day"] > before.max(), subject
        if math.isfinite(true["true_reconstitution_day"]):
            after = days[days["day"] >= true["true_reconstitution_day"]]["day"]
            assert true["true_reconstitution_day"] <= row["reconstitution_day"], subject
            assert row["reconstitution_day"] <= after.iloc[min(1, len(after) - 1)], subject
        else:
            assert row["censored"] and math.isnan(row["reconstitution_day"]), subject


def test_trial_questions_are_answered(small_trial: Path, workflow_run) -> None:
    """Dose proportionality, exposure-response and the one-row-per-subject table exist for
    what the trial holds (analytes of nca.tsv, endpoints of clinical.tsv, subjects)."""
    results, _ = workflow_run
    nca = read_tsv(results / "pk" / "nca.tsv")
    proportionality = read_tsv(results / "pk" / "dose_proportionality.tsv")
    assert set(proportionality["analyte"]) == set(nca["analyte"])
    clinical = read_tsv(small_trial / "clinical.tsv")
    response = read_tsv(results / "pk" / "exposure_response.tsv", text_columns=["endpoint"])
    assert set(response["endpoint"]) == set(clinical["endpoint"])
    subjects = read_tsv(results / "pk" / "subjects.tsv")
    assert set(subjects["subject_id"]) == set(read_tsv(small_trial / "subjects.tsv")["subject_id"])
    assert {"SRI-4 response day 90", "aplasia_duration_days"} <= set(subjects.columns)
    plots = results / "pk" / "plots"
    assert len(list((plots / "dose_proportionality").glob("*.png"))) == len(proportionality)
    endpoints = clinical[["endpoint", "day"]].drop_duplicates()
    assert len(list((plots / "exposure_response").glob("*.png"))) == len(endpoints)


def test_sdtm_pc_pp_and_their_transport_files(workflow_run) -> None:
    """PC/PP variables, SAS transport v5 read back with pyreadstat (names, labels, lengths),
    controlled terms and units; PP values equal pk/nca.tsv."""
    import pyreadstat

    from ckpk.export.sdtm import ANALYTE_TESTS, PC_COLUMNS, PP_COLUMNS
    from ckpk.pk.parameters import CDISC_TESTS, NCA_PARAMETERS

    results, _ = workflow_run
    pc = read_tsv(results / "sdtm" / "pc.tsv")
    pp = read_tsv(results / "sdtm" / "pp.tsv")
    assert list(pc.columns) == PC_COLUMNS and list(pp.columns) == PP_COLUMNS
    for table, xpt, domain in ((pc, "pc.xpt", "PC"), (pp, "pp.xpt", "PP")):
        data, meta = pyreadstat.read_xport(str(results / "sdtm" / xpt))
        assert list(data.columns) == list(table.columns) and len(data) == len(table)
        assert meta.table_name == domain and set(data["DOMAIN"]) == {domain}
        assert all(len(name) <= 8 for name in data.columns)
        assert all(0 < len(label) <= 40 for label in meta.column_labels)
        for column in data.columns:
            if data[column].dtype == object:
                assert data[column].map(lambda v: len(str(v).encode())).max() <= 200, column
    codes = {test[0]: test for test in ANALYTE_TESTS.values()}
    assert set(pc["PCTESTCD"]) <= set(codes)
    for row in pc.itertuples():
        assert row.PCORRESU == codes[row.PCTESTCD][3] == row.PCSTRESU
        if str(row.PCORRES).startswith("<"):  # BLQ: "<LLOQ", no numeric result
            assert math.isnan(row.PCSTRESN) and float(row.PCORRES[1:]) == pytest.approx(
                row.PCLLOQ, rel=1e-5
            )
    assert set(pp["PPTESTCD"]) <= set(CDISC_TESTS)
    assert all(pp["PPTEST"] == pp["PPTESTCD"].map(CDISC_TESTS))
    auc = pp[pp["PPTESTCD"] == "AUCINT"]
    assert set(auc["PPSTINT"]) == {"P0D"} and set(auc["PPENINT"]) == {"P28D"}
    # Every PP value is the value of pk/nca.tsv.
    nca = read_tsv(results / "pk" / "nca.tsv")
    column_of = {p.cdisc: p.name() for p in NCA_PARAMETERS if p.cdisc}
    test_of = {v[1]: k for k, v in ANALYTE_TESTS.items()}
    by_key = nca.set_index(["subject_id", "analyte"])
    for row in pp.itertuples():
        subject = row.USUBJID.removeprefix("CKPK-DEMO-")
        expected = by_key.loc[(subject, test_of[row.PPCAT]), column_of[row.PPTESTCD]]
        assert row.PPSTRESN == pytest.approx(expected, rel=1e-12), row


def test_workbook_and_parquet_copies(workflow_run) -> None:
    import openpyxl

    from ckpk.export.tables import WORKBOOK_SHEETS

    results, _ = workflow_run
    book = openpyxl.load_workbook(results / "ckpk_results.xlsx", read_only=False)
    assert book.sheetnames == list(WORKBOOK_SHEETS)
    for sheet_name, rel in WORKBOOK_SHEETS.items():
        sheet = book[sheet_name]
        header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
        columns = list(read_tsv(results / rel).columns)
        assert [h.split(" [")[0] for h in header] == columns, sheet_name
        assert sheet.freeze_panes == "A2"
        assert sheet.max_row == len(read_tsv(results / rel)) + 1
    nca_header = [c.value for c in next(book["NCA"].iter_rows(max_row=1))]
    assert "tmax [day]" in nca_header and "cmax [U]" in nca_header
    tables = sorted(p for p in results.rglob("*.tsv") if not {"logs", "batches"} & set(p.parts))
    tables = [p for p in tables if "provenance" not in p.parts]
    # Provenance is rewritten beside the exports, not before them: never read by them.
    assert not (results / "parquet" / "provenance").exists()
    for source in tables:
        copy = results / "parquet" / source.relative_to(results).with_suffix(".parquet")
        assert copy.is_file(), source
        parquet, tsv = pd.read_parquet(copy), read_tsv(source)
        for column in tsv.select_dtypes(include="object").columns:  # text: missing is None
            tsv[column] = tsv[column].where(tsv[column].notna(), None)
        pd.testing.assert_frame_equal(parquet, tsv, check_dtype=True)


def test_report_has_every_category_and_plot_kind(workflow_run, workflow_report) -> None:
    import json

    results, _ = workflow_run
    text = workflow_report.read_text(encoding="utf-8")
    start = text.index("var categories = ") + len("var categories = ")
    categories = json.loads(text[start : text.index(";\n", start)])
    assert {"Flow", "qPCR", "PK", "PD", "QC", "Provenance"} <= set(categories)
    files = [f for sub in categories.values() for group in sub.values() for f in group]
    for kind in (
        "/flow/qc/",
        "/qpcr/curves/",
        "/pk/plots/fits/",
        "/pk/plots/spaghetti/",
        "/pk/plots/dose_proportionality/",
        "/pk/plots/exposure_response/",
    ):
        assert any(kind in f and f.endswith(".png") for f in files), kind
    for page in ("subjects.html", "nca.html", "ledger.html"):
        assert any(f.endswith(f"/provenance/tables/{page}") for f in files), page
    assert any(f.endswith("/provenance/versions.tsv") for f in files)
    assert any(f.endswith("/provenance/config.yaml") for f in files)
    versions = read_tsv(results / "provenance" / "versions.tsv").set_index("package")
    assert {"ckpk", "flowkit", "snakemake", "numpy", "scipy"} <= set(versions.index)
