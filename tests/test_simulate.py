"""The simulated trial looks like a real lab's output and its truth is self-consistent.

Truth here comes from the model definitions (the Stein curve and its exact integral,
the spillover matrix, the population sizes) and is checked through independent
readers: FlowKit for the FCS files, a plain text parse for the plate exports.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import flowkit as fk
import numpy as np
import pandas as pd
import pytest

from ckpk.pk.kinetics import SteinParameters, stein_auc, stein_curve
from ckpk.simulate import SimulationSettings, cytometry, simulate_trial
from ckpk.simulate.trial import blood_state, draw_subjects
from ckpk.tables import read_tsv

PROJECT = Path(__file__).resolve().parents[1]
STRATEGY = PROJECT / "resources" / "gating" / "car_t.xml"


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "trial"
    simulate_trial(out, SimulationSettings(n_subjects=4, seed=7, events_per_file=20_000, workers=1))
    return out


def test_layout_and_sheets(trial: Path) -> None:
    subjects = read_tsv(trial / "subjects.tsv")
    assert list(subjects.columns[:5]) == [
        "subject_id",
        "dose_level",
        "dose",
        "infusion_date",
        "cohort",
    ]
    assert len(subjects) == 4
    fcs = sorted(p.relative_to(trial).as_posix() for p in (trial / "flow").rglob("*.fcs"))
    truth = read_tsv(trial / "truth" / "flow.tsv")
    problems = read_tsv(trial / "truth" / "problems.tsv")
    # Every good tube has truth; the planted extra files are listed as problems.
    assert set(truth["file"]) | set(problems["file"]) >= set(fcs)
    assert {p.suffix for p in (trial / "qpcr").iterdir()} == {".txt", ".csv"}
    samples = read_tsv(trial / "samples.tsv")
    assert set(samples.columns) >= {"sample", "lymphocytes_per_ul", "beads_per_test", "dna_ng"}
    # Visits cover screening to follow-up, day 0 included.
    days = truth.groupby("subject_id")["day"].agg(["min", "max"])
    assert (days["min"] == -7).all() and (days["max"] >= 90).all()


def test_fcs_files_load_in_flowkit_with_panel_and_spillover(trial: Path) -> None:
    truth = read_tsv(trial / "truth" / "flow.tsv")
    path = trial / truth["file"].iloc[3]
    sample = fk.Sample(path)
    assert sample.pnn_labels == cytometry.CHANNELS
    assert sample.pns_labels[3:9] == ["CD4", "CAR", "CD3", "CD19", "CD8", "Viability"]
    assert sample.event_count == 20_000
    assert sample.version == "3.1"
    # FCS 3.1 $SPILLOVER: n, the n detector names, then the n x n matrix row by row.
    tokens = sample.metadata["spillover"].split(",")
    n = int(tokens[0])
    assert tokens[1 : n + 1] == cytometry.FLUOROCHROMES
    matrix = fk.Matrix(sample.metadata["spillover"], tokens[1 : n + 1])
    np.testing.assert_allclose(matrix.matrix, cytometry.SPILLOVER, atol=5e-5)


def test_gating_the_shipped_strategy_recovers_drawn_populations(trial: Path) -> None:
    """FlowKit gates on compensated data find the events the simulator drew.

    The shipped strategy's gates sit between well-separated populations, so the CAR+,
    CD3+, B-cell and bead gates hold the drawn events up to a small leakage (CAR+ cells
    dim below the gate, false positives from the autofluorescent tail).
    """
    strategy = fk.parse_gating_xml(str(STRATEGY))
    truth = read_tsv(trial / "truth" / "flow.tsv")
    planted = set(read_tsv(trial / "truth" / "problems.tsv")["file"])
    truth = truth[~truth["file"].isin(planted)]
    for row in truth.sort_values("car_events").tail(3).itertuples():
        result = strategy.gate_sample(fk.Sample(trial / row.file))
        counts = result.report.set_index("gate_name")["count"]
        assert counts["CAR"] == pytest.approx(row.car_events, abs=3 + 0.02 * row.car_events)
        assert counts["CD3"] == pytest.approx(row.t_events, rel=0.02)
        assert counts["B_cells"] == pytest.approx(row.b_events, abs=3 + 0.03 * row.b_events)
        assert counts["Beads"] == pytest.approx(row.bead_events, abs=2 + 0.01 * row.bead_events)


def test_population_proportions_follow_blood_counts() -> None:
    """Multinomial draws: each population's share is within 4 binomial SDs."""
    rng = np.random.default_rng(3)
    subject = draw_subjects(6, rng)[4]
    blood = blood_state(subject, 10.0)
    tube = cytometry.TubeSetup()
    n = 200_000
    _, counts = cytometry.simulate_events(blood, tube, n, rng)
    expected = cytometry.expected_events_per_ul(blood, tube)
    total = sum(expected.values())
    for name, per_ul in expected.items():
        p = per_ul / total
        sd = np.sqrt(n * p * (1 - p))
        assert abs(counts[name] - n * p) <= 4 * sd + 1, name
    # The absolute-count identity the pipeline relies on: CAR/bead event ratio x beads/µL.
    ratio = expected["car_t"] / expected["bead"] * tube.beads_per_test / tube.blood_ul
    assert ratio == pytest.approx(blood.car_t)


def _quantstudio_results(path: Path) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8")
    block = text.split("[Results]\n", 1)[1]
    return pd.read_csv(io.StringIO(block), sep="\t", dtype=str, keep_default_na=False)


def test_plates_hold_standards_ntcs_and_unknowns(trial: Path) -> None:
    plates = read_tsv(trial / "truth" / "plates.tsv")
    qpcr_truth = read_tsv(trial / "truth" / "qpcr.tsv")
    for plate in plates.itertuples():
        path = trial / plate.file
        if path.suffix == ".txt":
            wells = _quantstudio_results(path)
            task, cq, sample = wells["Task"], wells["CT"], wells["Sample Name"]
            quantity = wells["Quantity"].str.replace(",", "")
            no_cq = "Undetermined"
        else:
            wells = pd.read_csv(path, dtype=str, keep_default_na=False)
            task = (
                wells["Content"]
                .str.replace(r"-\d+$", "", regex=True)
                .map({"Std": "STANDARD", "Unkn": "UNKNOWN", "NTC": "NTC"})
            )
            cq, sample = wells["Cq"], wells["Sample"]
            quantity = wells["Starting Quantity (SQ)"]
            no_cq = "NaN"
        assert (task == "NTC").sum() == 3 and (cq[task == "NTC"] == no_cq).all()
        standards = task == "STANDARD"
        assert standards.sum() == 18
        x = np.log10(quantity[standards].astype(float))
        y = cq[standards].replace(no_cq, np.nan).astype(float)
        ok = y.notna()
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        # The written Cq follow the plate's true curve (Poisson at 10 copies adds scatter).
        assert slope == pytest.approx(plate.slope, abs=0.12)
        assert intercept == pytest.approx(plate.intercept, abs=0.5)
        names = set(sample[task == "UNKNOWN"])
        assert names == set(qpcr_truth.loc[qpcr_truth["plate"] == plate.plate, "sample"])
        # Wells of a sample with no template never amplify.
        for row in qpcr_truth[qpcr_truth["plate"] == plate.plate].itertuples():
            values = cq[(sample == row.sample) & (task == "UNKNOWN")]
            assert len(values) == 3
            if row.copies_per_reaction == 0:
                assert (values == no_cq).all()
            elif row.copies_per_reaction > 1000:
                mean = values.astype(float).mean()
                expected = plate.intercept + plate.slope * np.log10(row.copies_per_reaction)
                assert mean == pytest.approx(expected, abs=0.4)


def test_truth_is_consistent_with_the_kinetic_model(trial: Path) -> None:
    params = read_tsv(trial / "truth" / "parameters.tsv")
    pk = read_tsv(trial / "truth" / "pk.tsv").set_index(["subject_id", "analyte"])
    flow = read_tsv(trial / "truth" / "flow.tsv")
    for row in params.itertuples():
        p = SteinParameters(row.cmax, row.tmax, row.foldx, row.alpha, row.beta, row.fb)
        assert row.rho == pytest.approx(np.log(row.foldx) / row.tmax)
        assert row.auc_0_28 == pytest.approx(stein_auc(p, 0, 28), rel=1e-9)
        dense = pk.loc[(row.subject_id, row.analyte)]
        # Dense-grid truth (step 0.005 d) against the exact integral and peak.
        assert dense["auc_0_28"] == pytest.approx(row.auc_0_28, rel=1e-4)
        assert dense["cmax"] == pytest.approx(row.cmax, rel=1e-3)
        assert dense["tmax"] == pytest.approx(row.tmax, abs=0.005)
        if row.analyte == "car_per_ul":
            visits = flow[flow["subject_id"] == row.subject_id]
            post = visits[visits["day"] >= 0]
            np.testing.assert_allclose(post["car_per_ul"], stein_curve(post["day"].to_numpy(), p))
            assert (visits.loc[visits["day"] < 0, "car_per_ul"] == 0).all()


def test_b_cells_fall_after_infusion_in_responders(trial: Path) -> None:
    flow = read_tsv(trial / "truth" / "flow.tsv")
    params = read_tsv(trial / "truth" / "parameters.tsv")
    responders = set(params.loc[params["responder"], "subject_id"])
    for subject_id, visits in flow.groupby("subject_id"):
        screening = visits.loc[visits["day"] == -7, "b_cells_per_ul"].iloc[0]
        month = visits.loc[visits["day"].between(14, 60), "b_cells_per_ul"]
        if subject_id in responders:
            assert (month < 0.05 * screening).all()


def test_patient_identity_is_planted_for_privacy_tests(trial: Path) -> None:
    truth = read_tsv(trial / "truth" / "flow.tsv")
    sample = fk.Sample(trial / truth["file"].iloc[0])
    assert "DOE^JANE" in sample.metadata["src"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    settings = SimulationSettings(n_subjects=2, seed=11, events_per_file=2_000, workers=1)
    simulate_trial(tmp_path / "a", settings)
    parallel = SimulationSettings(n_subjects=2, seed=11, events_per_file=2_000, workers=2)
    simulate_trial(tmp_path / "b", parallel)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    other = SimulationSettings(n_subjects=2, seed=12, events_per_file=2_000, workers=1)
    simulate_trial(tmp_path / "c", other)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        simulate_trial(tmp_path, SimulationSettings(n_subjects=1, events_per_file=1000))
    assert re.search("keep", (tmp_path / "x.txt").read_text())


def test_a_process_running_jax_writes_without_forking(tmp_path, recwarn):
    """Forking a process with JAX's threads running can deadlock (JAX warns at the fork):
    where the population fit has run, the simulator writes its subjects in turn."""
    jax = pytest.importorskip("jax")
    jax.numpy.zeros(1).block_until_ready()  # starts JAX's threads
    settings = SimulationSettings(n_subjects=2, seed=4, events_per_file=500, workers=2)
    simulate_trial(tmp_path / "trial", settings)
    assert not [w for w in recwarn if "fork" in str(w.message)]
    assert sorted(p.name for p in (tmp_path / "trial" / "flow").iterdir())[:2] == ["S01", "S02"]
