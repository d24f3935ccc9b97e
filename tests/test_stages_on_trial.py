"""Flow and qPCR stages on a simulated trial, compared with the simulator's truth.

Tolerances come from counting statistics, stated per test: the simulator draws every
event and every template molecule at random, so a measured value differs from the
true blood value by Poisson sampling (and, for dual-platform counts, the CBC's error).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ckpk.flow.stage import gate_batch, qc_plot_name, summarise_flow
from ckpk.inputs import ingest
from ckpk.qpcr.stage import run_qpcr
from ckpk.simulate import SimulationSettings, simulate_trial
from ckpk.tables import read_tsv

PROJECT = Path(__file__).resolve().parents[1]
STRATEGY = PROJECT / "resources" / "gating" / "car_t.xml"
GATES = {
    "car_gate": "/root/Lymphocytes/Singlets/Live/CD3/CAR",
    "cd3_gate": "/root/Lymphocytes/Singlets/Live/CD3",
    "bead_gate": "/root/Beads",
    "lymphocyte_gate": "/root/Lymphocytes",
    "b_cell_gate": "/root/Lymphocytes/Singlets/Live/B_cells",
}
LLOQ_EVENTS = 20


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stages") / "trial"
    # Subjects 7-9 include a dual-platform (CBC) site and the expansion cohort.
    settings = SimulationSettings(n_subjects=9, seed=21, events_per_file=40_000, workers=2)
    simulate_trial(out, settings)
    return out


@pytest.fixture(scope="module")
def flow(trial: Path, tmp_path_factory):
    result = ingest(trial)
    manifest = result.manifest
    fcs = manifest[manifest["kind"] == "fcs"].sort_values("file")
    qc_dir = tmp_path_factory.mktemp("qc")
    # Gate a subset with QC plots (plots are slow), the rest without.
    with_plots = fcs[fcs["subject_id"] == "S02"]
    counts_a, ledger_a = gate_batch(
        [(trial / f, f) for f in with_plots["file"]], STRATEGY, qc_dir=qc_dir
    )
    rest = fcs[fcs["subject_id"] != "S02"]
    counts_b, ledger_b = gate_batch([(trial / f, f) for f in rest["file"]], STRATEGY)
    counts = pd.concat([counts_a, counts_b], ignore_index=True)
    ledger = pd.concat([ledger_a, ledger_b], ignore_index=True)
    gate_counts, car_t = summarise_flow(counts, manifest, GATES, LLOQ_EVENTS)
    return {
        "car_t": car_t,
        "gate_counts": gate_counts,
        "ledger": ledger,
        "qc_dir": qc_dir,
        "plotted": list(with_plots["file"]),
    }


def test_truncated_fcs_is_rejected_and_others_gated(trial: Path, flow) -> None:
    problems = read_tsv(trial / "truth" / "problems.tsv")
    truncated = problems.loc[problems["problem"] == "truncated FCS file", "file"].iloc[0]
    ledger = flow["ledger"].set_index("file")
    assert ledger.loc[truncated, "status"] == "rejected"
    assert "truncated" in ledger.loc[truncated, "reason"]
    assert (ledger.drop(index=truncated)["status"] == "ok").all()
    assert truncated not in set(flow["car_t"]["file"])


def test_car_t_agrees_with_truth_within_counting_error(trial: Path, flow) -> None:
    """|measured − true| ≤ 4 SD + 3 % of true.

    SD from Poisson counting of the events the simulator drew: relative variance
    1/n_CAR + 1/n_beads (single-platform) or 1/n_CAR + 1/n_lymphocytes + 0.04² (dual,
    the simulated CBC has 4 % CV); for % of CD3+ the binomial SD of n_CAR / n_CD3. The
    3 % covers gate leakage (dim CAR+ cells below the CAR gate, dead cells in the
    lymphocyte gate).
    """
    truth = read_tsv(trial / "truth" / "flow.tsv").set_index("file")
    car_t = flow["car_t"].set_index("file")
    checked = {"beads": 0, "cbc": 0}
    for file, row in car_t.iterrows():
        true = truth.loc[file]
        if row["car_count"] < 50:
            continue
        n_car = row["car_count"]
        if true["count_method"] == "beads":
            rel_var = 1 / n_car + 1 / row["bead_count"]
            assert row["count_method"] == "single-platform beads"
        else:
            rel_var = 1 / n_car + 1 / row["lymphocyte_count"] + 0.04**2
            assert row["count_method"] == "dual-platform CBC"
        checked[true["count_method"]] += 1
        sd = math.sqrt(rel_var) * true["car_per_ul"]
        assert abs(row["car_per_ul"] - true["car_per_ul"]) <= 4 * sd + 0.03 * true["car_per_ul"]
        p = true["car_pct_cd3"] / 100
        sd_pct = 100 * math.sqrt(p * (1 - p) / row["cd3_count"])
        assert (
            abs(row["car_pct_cd3"] - true["car_pct_cd3"]) <= 4 * sd_pct + 0.03 * true["car_pct_cd3"]
        )
    assert checked["beads"] >= 10 and checked["cbc"] >= 3


def test_blq_when_no_car_t_cells(trial: Path, flow) -> None:
    truth = read_tsv(trial / "truth" / "flow.tsv").set_index("file")
    car_t = flow["car_t"].set_index("file")
    screening = [f for f in car_t.index if truth.loc[f, "day"] < 0]
    assert screening
    assert car_t.loc[screening, "blq"].all()
    # The LLOQ in cells/µL is the LLOQ in events scaled like the reading itself.
    counted = car_t[car_t["car_count"] > 0]
    per_event = counted["car_per_ul"] / counted["car_count"]
    np.testing.assert_allclose(counted["lloq_per_ul"], per_event * LLOQ_EVENTS, rtol=1e-9)


def test_b_cells_fall_after_infusion_in_responders(trial: Path, flow) -> None:
    params = read_tsv(trial / "truth" / "parameters.tsv")
    responders = set(params.loc[params["responder"], "subject_id"])
    car_t = flow["car_t"]
    for subject, rows in car_t.groupby("subject_id"):
        before = rows.loc[rows["day"] < 0, "b_cells_per_ul"]
        after = rows.loc[rows["day"].between(14, 60), "b_cells_per_ul"]
        if subject in responders and len(before) and len(after):
            assert (after < 0.1 * before.iloc[0]).all(), subject


def test_gate_counts_table_and_qc_plots(flow) -> None:
    counts = flow["gate_counts"]
    assert {"file", "subject_id", "day", "gate_path", "gate", "count", "percent_parent"} <= set(
        counts.columns
    )
    assert counts["subject_id"].notna().all()
    assert set(counts["gate"]) >= {"Lymphocytes", "Singlets", "Live", "CD3", "CAR", "Beads"}
    gated = set(flow["car_t"]["file"])
    for label in flow["plotted"]:
        png = flow["qc_dir"] / qc_plot_name(label)
        if label not in gated:
            assert not png.exists()  # rejected: nothing to show
            continue
        png = flow["qc_dir"] / qc_plot_name(label)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def qpcr(trial: Path):
    result = ingest(trial)
    plates = result.manifest[result.manifest["kind"] == "qpcr"].sort_values("file")
    return run_qpcr(
        [(trial / f, f) for f in plates["file"]],
        result.subjects,
        result.samples,
        r"^(?P<subject_id>[A-Za-z0-9-]+)_D(?P<day>-?\d+(\.\d+)?)",
        car_target="CAR",
        default_dna_ng=200.0,
    )


def test_copies_per_ug_agree_with_truth(trial: Path, qpcr) -> None:
    """Relative error ≤ 4 SD + 6 %, SD² = 1/(3·N) + 0.05² for N true copies/reaction.

    Three replicate wells each draw Poisson(N) molecules; the Cq read noise (0.12
    cycles ≈ 8 % per well, 5 % over three) adds the constant term; 6 % covers the
    per-plate curve's fitted slope/intercept error.
    """
    truth = read_tsv(trial / "truth" / "qpcr.tsv").set_index(["plate", "sample"])
    transgene = qpcr.transgene.set_index(["plate", "sample"])
    assert set(transgene.index) == set(truth.index)
    checked = 0
    for key, row in transgene.iterrows():
        true = truth.loc[key]
        assert row["subject_id"] == true["subject_id"] and row["day"] == true["day"]
        assert row["dna_ng"] == pytest.approx(true["dna_ng"])
        n = true["copies_per_reaction"]
        if n < 30:
            continue
        assert row["blq"] == False  # noqa: E712 - pandas boolean
        sd = math.sqrt(1 / (3 * n) + 0.05**2)
        error = abs(row["copies_per_ug"] / true["copies_per_ug"] - 1)
        assert error <= 4 * sd + 0.06, (key, row["copies_per_ug"], true["copies_per_ug"])
        checked += 1
    assert checked >= 20


def test_zero_copy_samples_are_blq(trial: Path, qpcr) -> None:
    truth = read_tsv(trial / "truth" / "qpcr.tsv").set_index(["plate", "sample"])
    transgene = qpcr.transgene.set_index(["plate", "sample"])
    zero = truth.index[truth["copies_per_ug"] == 0]
    assert len(zero) >= 9  # every subject's screening sample
    assert transgene.loc[zero, "blq"].astype(bool).all()
    assert transgene.loc[zero, "copies_per_ug"].isna().all()


def test_plates_pass_and_curves_match_truth(trial: Path, qpcr) -> None:
    plates = read_tsv(trial / "truth" / "plates.tsv").set_index("plate")
    curves = qpcr.curves.set_index("plate")
    assert curves["pass"].all()
    for plate, row in curves.iterrows():
        assert row["slope"] == pytest.approx(plates.loc[plate, "slope"], abs=0.1)
        assert row["efficiency"] == pytest.approx(plates.loc[plate, "efficiency_pct"], abs=4)
    assert (qpcr.ledger["status"] == "ok").all()


@pytest.fixture(scope="module")
def pk(trial: Path, flow, qpcr):
    from ckpk.pk.concentrations import build_concentrations
    from ckpk.pk.nca import nca_table

    subjects = ingest(trial).subjects
    plate_files = dict(zip(qpcr.wells["plate"], qpcr.wells["source_file"], strict=False))
    concentrations = build_concentrations(flow["car_t"], qpcr.transgene, subjects, plate_files)
    return concentrations, nca_table(concentrations, subjects=subjects)


def _sampled_truth(trial: Path) -> dict[tuple[str, str], pd.DataFrame]:
    """True levels at the days actually sampled, per subject × analyte."""
    flow = read_tsv(trial / "truth" / "flow.tsv")
    problems = set(read_tsv(trial / "truth" / "problems.tsv")["file"])
    flow = flow[~flow["file"].isin(problems)]
    qpcr = read_tsv(trial / "truth" / "qpcr.tsv")
    out = {}
    for subject, rows in flow.groupby("subject_id"):
        for analyte in ("car_per_ul", "car_pct_cd3"):
            out[(subject, analyte)] = rows[["day", analyte]].rename(columns={analyte: "value"})
    for subject, rows in qpcr.groupby("subject_id"):
        out[(subject, "car_copies_per_ug")] = rows[["day", "copies_per_ug"]].rename(
            columns={"copies_per_ug": "value"}
        )
    return out


def test_concentrations_table_from_both_assays(trial: Path, pk) -> None:
    concentrations, _ = pk
    assert set(concentrations["analyte"]) == {
        "car_per_ul",
        "car_pct_cd3",
        "b_cells_per_ul",
        "car_copies_per_ug",
    }
    assert not concentrations.duplicated(["subject_id", "analyte", "day"]).any()
    blq = concentrations[concentrations["blq"]]
    assert (blq["lloq"] > 0).all()
    quantified = concentrations[~concentrations["blq"]]
    assert (quantified["value"] >= quantified["lloq"] * (1 - 1e-9)).all()
    assert (concentrations["day"] < 0).any()  # screening kept in the table
    assert concentrations["source"].str.match(r"(flow|qpcr)/").all()


def test_nca_against_dense_truth(trial: Path, pk) -> None:
    """NCA Cmax, Tmax and AUC0-28 against the true curve (truth/pk.tsv, 0.005-day grid).

    Tolerance = design error + measurement error. The design error is what a perfect
    assay would give on this visit schedule: the NCA of the true levels at the sampled
    days (a peak between visits is missed, trapezoids cut corners). The measurement
    error allowance is 25 % of the value (4 SD of the Poisson counting at the peak:
    ~4 % for flow at hundreds of CAR events, ~5 % + curve error for qPCR).
    """
    from ckpk.pk.nca import nca_profile

    _, nca = pk
    dense = read_tsv(trial / "truth" / "pk.tsv").set_index(["subject_id", "analyte"])
    sampled = _sampled_truth(trial)
    nca = nca.set_index(["subject_id", "analyte"])
    checked = 0
    for key, true_levels in sampled.items():
        truth = dense.loc[key]
        if not truth["responder"] or key[1] == "car_pct_cd3":
            continue
        design = nca_profile(true_levels["day"], true_levels["value"])
        measured = nca.loc[key]
        assert design["cmax"] <= truth["cmax"] * (1 + 1e-9)  # sampling never exceeds the peak
        assert abs(measured["cmax"] - design["cmax"]) <= 0.25 * design["cmax"], key
        # Tmax is a sampled day whose true level is near the sampled maximum.
        level_at = dict(zip(true_levels["day"], true_levels["value"], strict=True))
        assert level_at[measured["tmax"]] >= 0.7 * design["cmax"], key
        if np.isnan(measured["auc_0_28"]):
            # PKNCA gives no aucint when a BLQ sample after Tlast meets a missing day 28.
            assert "auc_0_28" in measured["flags"], key
            continue
        design_error = abs(design["auc_0_28"] - truth["auc_0_28"])
        allowed = design_error + 0.25 * design["auc_0_28"]
        assert abs(measured["auc_0_28"] - truth["auc_0_28"]) <= allowed, key
        checked += 1
    assert checked >= 10
