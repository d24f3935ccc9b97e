"""Every shape of trial runs to the end, and a folder no run can use stops at once.

Each test cuts a variant out of one small simulated trial (flow only, qPCR only, a
qPCR target that does not match, curves that all fail, one subject, a subject with a
single visit) and runs the whole workflow on it. What is expected comes from the
simulator's record of what it wrote (truth/) and from the configuration given, not from
an earlier run. The workflow is also run from another folder (``snakemake -s``) and as a
module of another workflow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckpk.simulate import SimulationSettings, simulate_trial
from ckpk.tables import read_tsv

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("trial_shapes")]

FLOW_ANALYTES = {"car_per_ul", "car_pct_cd3"}
QPCR_ANALYTES = {"car_copies_per_ug"}
# Every table a run writes, with the first column of its header.
STAGE_TABLES = {
    "ledger.tsv": "file",
    "flow/gate_counts.tsv": "file",
    "flow/car_t.tsv": "file",
    "qpcr/wells.tsv": "plate",
    "qpcr/standard_curves.tsv": "plate",
    "qpcr/transgene.tsv": "plate",
    "pk/concentrations.tsv": "subject_id",
    "pk/nca.tsv": "subject_id",
    "pk/model_fits.tsv": "subject_id",
    "pk/summary_by_dose.tsv": "dose_level",
    "pk/persistence_by_dose.tsv": "dose_level",
}
STAGE_FOLDERS = ("qpcr/curves", "pk/plots/fits", "pk/plots/spaghetti")


def run_snakemake(
    *config: str, cwd: Path = PROJECT, snakefile: Path | None = None
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--cores", "1"]
    if snakefile is not None:
        command += ["-s", str(snakefile)]
    command += ["--config", "flow={qc_plots: false}", *config]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def base_trial(tmp_path_factory) -> Path:
    trial = tmp_path_factory.mktemp("shapes") / "base"
    simulate_trial(
        trial, SimulationSettings(n_subjects=2, seed=11, events_per_file=2000, workers=1)
    )
    return trial


def variant(base: Path, dest: Path, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the trial without its truth/ folder (and without ``drop``)."""
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("truth"))
    for name in drop:
        target = dest / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return dest


def completed(proc: subprocess.CompletedProcess, results: Path) -> dict[str, object]:
    """Assert the run succeeded with every stage's table and folder; return the tables."""
    assert proc.returncode == 0, proc.stderr[-4000:]
    tables = {}
    for rel, first_column in STAGE_TABLES.items():
        path = results / rel
        assert path.is_file(), f"{rel} is missing"
        header = path.read_text(encoding="utf-8").splitlines()[0].split("\t")
        assert header[0] == first_column, rel
        tables[rel] = read_tsv(path)
    for rel in STAGE_FOLDERS:
        assert (results / rel).is_dir(), f"{rel}/ is missing"
    return tables


def test_flow_only_trial(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial", drop=("qpcr",))
    results = tmp_path / "results"
    tables = completed(run_snakemake(f"input_dir={trial}", f"results_dir={results}"), results)
    for rel in ("qpcr/wells.tsv", "qpcr/standard_curves.tsv", "qpcr/transgene.tsv"):
        assert tables[rel].empty, rel
    nca = tables["pk/nca.tsv"]
    assert set(nca["analyte"]) == FLOW_ANALYTES
    truth = read_tsv(base_trial / "truth" / "flow.tsv")
    assert set(nca["subject_id"]) == set(truth["subject_id"])
    assert not (tables["ledger.tsv"]["kind"] == "qpcr").any()


def test_qpcr_only_trial(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial", drop=("flow",))
    results = tmp_path / "results"
    tables = completed(run_snakemake(f"input_dir={trial}", f"results_dir={results}"), results)
    for rel in ("flow/gate_counts.tsv", "flow/car_t.tsv"):
        assert tables[rel].empty, rel
    nca = tables["pk/nca.tsv"]
    assert set(nca["analyte"]) == QPCR_ANALYTES
    truth = read_tsv(base_trial / "truth" / "qpcr.tsv")
    assert set(nca["subject_id"]) == set(truth["subject_id"])
    plates = read_tsv(base_trial / "truth" / "plates.tsv")
    assert len(list((results / "qpcr" / "curves").glob("*.png"))) == len(plates)


def test_no_plate_has_the_configured_target(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial")
    results = tmp_path / "results"
    proc = run_snakemake(
        f"input_dir={trial}", f"results_dir={results}", "qpcr={car_target: CD19-CAR}"
    )
    tables = completed(proc, results)
    ledger = tables["ledger.tsv"].set_index("file")
    plates = read_tsv(base_trial / "truth" / "plates.tsv")
    for file in plates["file"]:
        assert ledger.loc[file, "status"] == "rejected"
        reason = ledger.loc[file, "reason"]
        # The ledger names the configured target and the targets found on the plate.
        assert "'CD19-CAR'" in reason and "targets on this plate: CAR" in reason, reason
    assert tables["qpcr/transgene.tsv"].empty
    assert set(tables["pk/nca.tsv"]["analyte"]) == FLOW_ANALYTES


def test_every_standard_curve_fails(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial")
    results = tmp_path / "results"
    proc = run_snakemake(
        f"input_dir={trial}",
        f"results_dir={results}",
        # No real assay amplifies at 150-160 % efficiency: every curve fails acceptance.
        "qpcr={acceptance: {efficiency_min: 150, efficiency_max: 160, r2_min: 0.98}}",
    )
    tables = completed(proc, results)
    curves = tables["qpcr/standard_curves.tsv"]
    plates = read_tsv(base_trial / "truth" / "plates.tsv")
    assert len(curves) == len(plates) and not curves["pass"].any()
    ledger = tables["ledger.tsv"].set_index("file")
    for file in plates["file"]:
        assert ledger.loc[file, "status"] == "rejected"
        assert "standard curve CAR failed" in ledger.loc[file, "reason"]
    assert tables["qpcr/transgene.tsv"]["copies_per_ug"].isna().all()
    assert set(tables["pk/nca.tsv"]["analyte"]) == FLOW_ANALYTES


def test_one_subject(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial")
    sheet = (trial / "subjects.tsv").read_text(encoding="utf-8").splitlines()
    (trial / "subjects.tsv").write_text("\n".join(sheet[:2]) + "\n", encoding="utf-8")
    kept = sheet[1].split("\t")[0]
    results = tmp_path / "results"
    tables = completed(run_snakemake(f"input_dir={trial}", f"results_dir={results}"), results)
    nca = tables["pk/nca.tsv"]
    assert set(nca["subject_id"]) == {kept}
    assert set(nca["analyte"]) == FLOW_ANALYTES | QPCR_ANALYTES
    assert set(tables["pk/summary_by_dose.tsv"]["dose_level"]) == {sheet[1].split("\t")[1]}


def test_subject_with_a_single_visit(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial")
    # The tube with the most CAR+ events (simulator truth) becomes subject S77's only visit.
    truth = read_tsv(base_trial / "truth" / "flow.tsv").sort_values("car_events")
    planted = set(read_tsv(base_trial / "truth" / "problems.tsv")["file"])
    best = truth[~truth["file"].isin(planted)].iloc[-1]
    day = int(best["day"])
    (trial / "flow" / "S77").mkdir()
    shutil.copy(trial / best["file"], trial / "flow" / "S77" / f"S77_D{day}.fcs")
    with open(trial / "subjects.tsv", "a", encoding="utf-8") as sheet:
        sheet.write("S77\tDL1\t\t\t\n")
    results = tmp_path / "results"
    lloq_events = max(1, int(best["car_events"]) // 3)
    proc = run_snakemake(
        f"input_dir={trial}", f"results_dir={results}", f"flow={{lloq_events: {lloq_events}}}"
    )
    tables = completed(proc, results)
    nca = tables["pk/nca.tsv"].set_index(["subject_id", "analyte"])
    row = nca.loc[("S77", "car_pct_cd3")]
    assert row["n_obs"] == 1 and row["tmax"] == day and row["cmax"] > 0
    # One sample gives no terminal phase: empty, with the reason.
    assert row[["lambda_z", "half_life"]].isna().all() and "lambda_z" in row["flags"]
    fits = tables["pk/model_fits.tsv"].set_index(["subject_id", "analyte"])
    fit = fits.loc[("S77", "car_pct_cd3")]
    assert not fit["converged"] and isinstance(fit["flags"], str) and fit["flags"]
    assert fit[["cmax", "tmax", "alpha"]].isna().all()


def test_missing_subjects_sheet_stops_before_any_job(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial", drop=("subjects.tsv",))
    results = tmp_path / "results"
    proc = run_snakemake(f"input_dir={trial}", f"results_dir={results}")
    assert proc.returncode != 0
    assert f"{trial / 'subjects.tsv'} is missing" in proc.stderr
    assert not results.exists()  # no job ran


def test_subjects_sheet_without_subjects_stops(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial")
    (trial / "subjects.tsv").write_text("subject_id\tdose_level\n", encoding="utf-8")
    results = tmp_path / "results"
    proc = run_snakemake(f"input_dir={trial}", f"results_dir={results}")
    assert proc.returncode != 0
    assert f"{trial / 'subjects.tsv'} lists no subject" in proc.stderr
    assert not results.exists()


def test_folder_without_instrument_files_stops(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial", drop=("flow", "qpcr"))
    results = tmp_path / "results"
    proc = run_snakemake(f"input_dir={trial}", f"results_dir={results}")
    assert proc.returncode != 0
    assert f"{trial} holds no instrument file" in proc.stderr
    assert not results.exists()


def test_summary_printed_at_the_end(base_trial: Path, tmp_path: Path) -> None:
    """The summary's counts agree with the simulator's record of the files it wrote."""
    trial = variant(base_trial, tmp_path / "trial")
    results = tmp_path / "results"
    proc = run_snakemake(f"input_dir={trial}", f"results_dir={results}")
    completed(proc, results)
    summary = proc.stderr[proc.stderr.index("ckpk: the run finished") :]
    flow = read_tsv(base_trial / "truth" / "flow.tsv")
    problems = read_tsv(base_trial / "truth" / "problems.tsv")
    planted_fcs = problems[problems["file"].str.endswith(".fcs")]
    n_fcs = len(set(flow["file"]) | set(planted_fcs["file"]))
    used = n_fcs - len(planted_fcs)
    assert f"fcs   {n_fcs:>5} found: {used} used, {len(planted_fcs)} rejected" in summary
    n_plates = len(read_tsv(base_trial / "truth" / "plates.tsv"))
    assert f"qpcr  {n_plates:>5} found: {n_plates} used" in summary
    first = sorted(planted_fcs["file"])[0]
    assert f"    {first}: " in summary
    n_subjects = flow["subject_id"].nunique()
    assert f"of {n_subjects} subjects with quantifiable CAR T" in summary
    assert f"tables: {results}/" in summary


def test_runs_from_another_folder_with_s(base_trial: Path, tmp_path: Path) -> None:
    """Shipped files (config, gating strategy, schema, captions) come from ckpk's own
    folder, not the folder snakemake is started from."""
    trial = variant(base_trial, tmp_path / "trial")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    results = tmp_path / "results"
    proc = run_snakemake(
        f"input_dir={trial}",
        f"results_dir={results}",
        cwd=elsewhere,
        snakefile=PROJECT / "Snakefile",
    )
    tables = completed(proc, results)
    assert set(tables["pk/nca.tsv"]["analyte"]) == FLOW_ANALYTES | QPCR_ANALYTES
    report = results / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(PROJECT / "Snakefile"), "--cores", "1"]
        + ["--config", f"input_dir={trial}", f"results_dir={results}", "flow={qc_plots: false}"]
        + ["--report", str(report)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.stat().st_size > 10_000


def test_runs_as_a_module_of_another_workflow(base_trial: Path, tmp_path: Path) -> None:
    trial = variant(base_trial, tmp_path / "trial")
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "Snakefile").write_text(
        f'module ckpk:\n    snakefile: "{PROJECT / "Snakefile"}"\nuse rule * from ckpk\n',
        encoding="utf-8",
    )
    results = tmp_path / "results"
    proc = run_snakemake(f"input_dir={trial}", f"results_dir={results}", cwd=outer)
    tables = completed(proc, results)
    assert set(tables["pk/nca.tsv"]["analyte"]) == FLOW_ANALYTES | QPCR_ANALYTES
