"""Transgene copies per µg DNA: hand-worked rules and a simulated-truth recovery test.

Hand-worked plates use an exact standard curve, Cq = 38 − 3.32·log10(copies), so a
well read at Cq 28.04 holds exactly 1000 copies; expected results are computed here
from the formulas of config/README.md (``qpcr/transgene.tsv``), not from the code under
test.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PROJECT_DIR

from ckpk.qpcr import (
    CELLS_PER_UG_DNA,
    DEFAULT_DNA_NG,
    TRANSGENE_COLUMNS,
    TRANSGENE_SORT_BY,
    quantify,
    read_plate,
    standard_curves,
)
from ckpk.qpcr.stage import run_qpcr
from ckpk.simulate import SimulationSettings
from ckpk.tables import read_tsv, write_tsv

SLOPE, INTERCEPT = -3.32, 38.0
LEVELS = (1e1, 1e2, 1e3, 1e4, 1e5)


def cq_for(copies: float) -> float:
    return INTERCEPT + SLOPE * math.log10(copies)


def copies_for(cq: float, slope: float = SLOPE, intercept: float = INTERCEPT) -> float:
    return 10 ** ((cq - intercept) / slope)


class Plate:
    """Builds a wells table well by well."""

    def __init__(self, plate: str = "P1", target: str = "CAR", standards=LEVELS, slope=SLOPE):
        self.rows: list[dict] = []
        self.plate, self.target = plate, target
        for q in standards:
            for _ in range(2):
                self.add("standard", "", INTERCEPT + slope * math.log10(q), quantity=q)
        self.add("ntc", "", math.nan)

    def add(self, task, sample, cq, quantity=math.nan, omit=False, target=None):
        self.rows.append(
            {
                "plate": self.plate,
                "well": f"W{len(self.rows) + 1}",
                "sample": sample,
                "target": target or self.target,
                "task": task,
                "cq": cq,
                "quantity": quantity,
                "omit": omit,
            }
        )
        return self

    def sample(self, name, cqs, target=None, omit=()):
        for i, cq in enumerate(cqs):
            self.add("unknown", name, cq, omit=i in omit, target=target)
        return self

    def wells(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def blq(value) -> bool | None:
    """The blq cell as True/False, None when empty."""
    return None if pd.isna(value) else bool(value)


def sheet(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sample", "subject_id", "day", "dna_ng"])


def run(wells, samples=None, **kwargs) -> pd.DataFrame:
    table = quantify(wells, standard_curves(wells), samples, "CAR", **kwargs)
    return table.set_index("sample", drop=False)


def test_dna_mass_rule_hand_worked():
    cqs = [cq_for(1000) - 0.1, cq_for(1000), cq_for(1000) + 0.1]
    wells = Plate().sample("S01_D14", cqs).sample("S02_D7", [cq_for(400)] * 2).wells()
    out = run(wells, sheet(("S01_D14", "S01", 14, 200.0), ("S02_D7", "S02", 7, math.nan)))
    assert list(out.columns[: len(TRANSGENE_COLUMNS)]) == TRANSGENE_COLUMNS
    a = out.loc["S01_D14"]
    expected = np.mean([copies_for(c) for c in cqs])  # mean of per-well copies
    assert a["copies_per_reaction"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1000 * np.mean([10 ** (0.1 / 3.32), 1, 10 ** (-0.1 / 3.32)]))
    assert a["copies_per_ug"] == pytest.approx(expected / 0.2)  # 200 ng = 0.2 µg
    assert a["lloq_copies_per_ug"] == pytest.approx(10 / 0.2)
    assert (a["subject_id"], a["day"], a["n_rep"], a["n_pos"]) == ("S01", 14, 3, 3)
    assert a["cq_mean"] == pytest.approx(cq_for(1000))
    assert a["cq_sd"] == pytest.approx(0.1)
    assert blq(a["blq"]) is False and a["flag"] == ""
    b = out.loc["S02_D7"]  # dna_ng empty → the default mass, 200 ng
    assert (b["dna_ng"], b["dna_source"]) == (200.0, "default")
    assert b["copies_per_ug"] == pytest.approx(400 / 0.2)


def test_default_dna_ng_argument():
    wells = Plate().sample("S1", [cq_for(1000)] * 3).wells()
    out = run(wells, sheet(("S1", "S01", 0, None)), default_dna_ng=100.0)
    assert out.loc["S1", "copies_per_ug"] == pytest.approx(1000 / 0.1)


def test_one_default_dna_mass_for_api_workflow_and_simulator():
    # A direct call, the workflow (config.yaml) and the simulated demo assume the same mass.
    config = yaml.safe_load((PROJECT_DIR / "config" / "config.yaml").read_text())
    assert config["qpcr"]["dna_ng"] == DEFAULT_DNA_NG == 200.0
    for function in (quantify, run_qpcr):
        assert inspect.signature(function).parameters["default_dna_ng"].default == DEFAULT_DNA_NG
    assert SimulationSettings().default_dna_ng == DEFAULT_DNA_NG


def test_below_lowest_standard_is_blq_without_extrapolation():
    wells = Plate().sample("low", [cq_for(4)] * 3).sample("none", [math.nan] * 3).wells()
    out = run(wells, sheet(("low", "S1", 1, 500), ("none", "S1", 2, 500)))
    low = out.loc["low"]
    assert blq(low["blq"]) is True and math.isnan(low["copies_per_reaction"])
    assert math.isnan(low["copies_per_ug"])
    assert low["copies_per_reaction_reading"] == pytest.approx(4)
    assert low["lloq_copies_per_ug"] == pytest.approx(10 / 0.5)
    none = out.loc["none"]  # not amplified: no Cq, never 0 or 40
    assert blq(none["blq"]) is True and none["n_pos"] == 0 and none["n_rep"] == 3
    assert math.isnan(none["cq_mean"]) and math.isnan(none["copies_per_reaction"])
    assert none["flag"] == ""


def test_above_highest_standard_is_flagged_not_censored():
    wells = Plate().sample("high", [cq_for(5e5)] * 3).wells()
    high = run(wells, sheet(("high", "S1", 9, 500))).loc["high"]
    assert blq(high["blq"]) is False and high["copies_per_reaction"] == pytest.approx(5e5)
    assert high["flag"] == "above the highest standard (100000 copies/reaction)"


def test_replicate_sd_above_half_a_cycle():
    cqs = [cq_for(1000) - 0.6, cq_for(1000), cq_for(1000) + 0.6]  # SD 0.6
    out = run(Plate().sample("S", cqs).wells(), sheet(("S", "S1", 1, 500))).loc["S"]
    assert out["flag"] == "replicate Cq SD 0.60 > 0.5"


def test_mixed_replicates_average_the_amplified_wells():
    wells = Plate().sample("S", [cq_for(1000), cq_for(1000), math.nan]).wells()
    out = run(wells, sheet(("S", "S1", 1, 500))).loc["S"]
    assert (out["n_rep"], out["n_pos"]) == (3, 2)
    assert out["copies_per_reaction"] == pytest.approx(1000)  # not (1000+1000+0)/3
    assert out["flag"] == "1 of 3 replicates not amplified"


def test_one_of_three_replicates_is_detected_not_quantifiable():
    """1 of 3 wells amplified (even well inside the standards): a detection, not a number."""
    wells = Plate().sample("S", [cq_for(1000), math.nan, math.nan]).wells()
    out = run(wells, sheet(("S", "S1", 1, 500))).loc["S"]
    assert (out["n_rep"], out["n_pos"]) == (3, 1)
    assert out["blq"] and out["detected"] and math.isnan(out["copies_per_ug"])
    assert "detected, not quantifiable: 1 of 3 replicates amplified (fewer than 2)" in out["flag"]
    # qpcr.min_positive_replicates: 1 accepts a single amplified well.
    one = run(wells, sheet(("S", "S1", 1, 500)), min_positive_replicates=1).loc["S"]
    assert not one["blq"] and one["copies_per_reaction"] == pytest.approx(1000)


def test_detection_states():
    """Not detected, detected below the LLOQ, quantifiable, and a singlicate sample."""
    wells = (
        Plate()
        .sample("none", [math.nan, math.nan, math.nan])
        .sample("low", [cq_for(5), cq_for(5), cq_for(5)])  # amplified, below the lowest standard
        .sample("ok", [cq_for(1000), cq_for(1000), cq_for(1000)])
        .sample("single", [cq_for(1000)])  # run in one well: that well suffices
        .wells()
    )
    table = run(
        wells,
        sheet(
            ("none", "S1", 1, 500),
            ("low", "S1", 2, 500),
            ("ok", "S1", 3, 500),
            ("single", "S1", 4, 500),
        ),
    )
    assert (table.loc["none", "blq"], table.loc["none", "detected"]) == (True, False)
    assert (table.loc["low", "blq"], table.loc["low", "detected"]) == (True, True)
    assert "below the lowest standard" in table.loc["low", "flag"]
    assert (table.loc["ok", "blq"], table.loc["ok", "detected"]) == (False, True)
    assert not table.loc["single", "blq"]


def test_omitted_wells_are_not_replicates():
    wells = Plate().sample("S", [cq_for(1000), cq_for(1000), 20.0], omit={2}).wells()
    out = run(wells, sheet(("S", "S1", 1, 500))).loc["S"]
    assert (out["n_rep"], out["n_pos"]) == (2, 2)
    assert out["copies_per_reaction"] == pytest.approx(1000) and out["flag"] == ""


def test_amplified_ntc_flags_every_sample_of_the_plate_target():
    plate = Plate().sample("A", [cq_for(1000)] * 2).sample("B", [cq_for(100)] * 2)
    plate.add("ntc", "", 36.5)
    other = Plate("P2").sample("C", [cq_for(100)] * 2)
    wells = pd.concat([plate.wells(), other.wells()])
    out = run(wells, sheet(("A", "S1", 1, 500), ("B", "S1", 2, 500), ("C", "S1", 3, 500)))
    for name in ("A", "B"):
        assert "NTC amplified on plate P1 (CAR): W" in out.loc[name, "flag"]
        assert "(Cq 36.50)" in out.loc[name, "flag"]
        assert out.loc[name, "copies_per_reaction"] > 0  # flagged, still reported
    assert out.loc["C", "flag"] == ""


def test_failed_curve_gives_no_copies_and_names_plate_and_reason():
    bad = Plate("P9", slope=-3.9).sample("S", [cq_for(1000)] * 3).wells()
    out = run(bad, sheet(("S", "S1", 1, 500))).loc["S"]
    assert math.isnan(out["copies_per_reaction"]) and math.isnan(out["copies_per_ug"])
    assert blq(out["blq"]) is None
    assert (
        out["flag"] == "standard curve of plate P9 (CAR) failed: efficiency 80.5 % outside 90–110 %"
    )


def test_plate_with_one_standard_level():
    wells = Plate(standards=(1e3,)).sample("S", [cq_for(1000)] * 3).wells()
    out = run(wells, sheet(("S", "S1", 1, 500))).loc["S"]
    assert out["flag"] == (
        "standard curve of plate P1 (CAR) failed: only 1 standard level (need ≥ 3)"
    )


def test_no_curve_for_the_target():
    wells = Plate(target="RPP30").sample("S", [25.0] * 2, target="CAR").wells()
    out = run(wells, sheet(("S", "S1", 1, 500))).loc["S"]
    assert out["flag"] == "standard curve of plate P1 (CAR) failed: no standard wells"
    curves = standard_curves(wells)
    out = quantify(wells, curves[curves["target"] != "CAR"], None, "CAR").iloc[0]
    assert out["flag"] == (
        "sample 'S' not in the samples table; no standard curve for CAR on plate P1"
    )


def test_unmapped_sample_keeps_its_row():
    wells = Plate().sample("S01_D14", [cq_for(1000)] * 2).sample("mystery", [cq_for(50)] * 2)
    out = run(wells.wells(), sheet(("S01_D14", "S01", 14, 500)))
    assert list(out.index) == ["S01_D14", "mystery"]
    assert out.loc["mystery", "subject_id"] == "" and math.isnan(out.loc["mystery", "day"])
    assert out.loc["mystery", "flag"] == "sample 'mystery' not in the samples table"
    assert out.loc["mystery", "copies_per_ug"] == pytest.approx(50 / 0.2)  # default 200 ng


def test_plate_specific_sample_rows_win():
    wells = pd.concat(
        [
            Plate("P1").sample("S1", [cq_for(1000)] * 2).wells(),
            Plate("P2").sample("S1", [cq_for(1000)] * 2).wells(),
        ]
    )
    samples = pd.DataFrame(
        {
            "sample": ["S1", "S1"],
            "plate": ["P2", ""],
            "subject_id": ["S07", "S01"],
            "day": [28, 14],
            "dna_ng": [250, 500],
        }
    )
    out = quantify(wells, standard_curves(wells), samples, "CAR").set_index("plate")
    assert (out.loc["P1", "subject_id"], out.loc["P1", "day"]) == ("S01", 14)
    assert (out.loc["P2", "subject_id"], out.loc["P2", "day"]) == ("S07", 28)
    assert out.loc["P2", "copies_per_ug"] == pytest.approx(1000 / 0.25)
    assert out["flag"].eq("").all()  # different subjects: no repeat


def test_sample_on_two_plates_keeps_both_rows_flagged():
    wells = pd.concat(
        [
            Plate("P1").sample("S01_D14", [cq_for(1000)] * 2).wells(),
            Plate("P2").sample("S01_D14", [cq_for(1200)] * 2).wells(),
        ]
    )
    out = quantify(wells, standard_curves(wells), sheet(("S01_D14", "S01", 14, 500)), "CAR")
    assert list(out["plate"]) == ["P1", "P2"]
    assert list(out["flag"]) == ["also measured on plate P2", "also measured on plate P1"]
    assert out["copies_per_reaction"].round(6).tolist() == [1000, 1200]


def test_reference_gene_rule():
    plate = Plate()
    for q in LEVELS:  # RPP30 standards on the same plate, same curve
        plate.add("standard", "", cq_for(q), quantity=q, target="RPP30")
    plate.sample("S", [cq_for(1000)] * 3)
    plate.sample("S", [cq_for(20000)] * 3, target="RPP30")
    plate.sample("T", [cq_for(1000)] * 3)  # no reference wells
    out = run(
        plate.wells(), sheet(("S", "S1", 7, 500), ("T", "S1", 8, 500)), reference_target="RPP30"
    )
    s = out.loc["S"]
    # copies/µg = CAR ÷ (reference / 2) × 151,515 = 1000 ÷ 10000 × 151515
    assert CELLS_PER_UG_DNA == 151_515
    assert s["copies_per_ug"] == pytest.approx(15151.5)
    assert s["dna_ng"] == pytest.approx(10000 / 151515 * 1000)  # 66.0 ng implied
    assert s["dna_source"] == "reference gene"
    assert s["lloq_copies_per_ug"] == pytest.approx(10 / 10000 * 151515)
    t = out.loc["T"]
    assert math.isnan(t["copies_per_ug"]) and t["copies_per_reaction"] == pytest.approx(1000)
    assert t["flag"] == "reference gene RPP30: no RPP30 wells on this plate"
    plate.add("ntc", "", 33.0, target="RPP30")  # reference NTC amplified: flagged too
    out = run(plate.wells(), sheet(("S", "S1", 7, 500)), reference_target="RPP30")
    assert out.loc["S", "flag"].startswith("NTC amplified on plate P1 (RPP30): W")


def test_plate_without_unknowns_gives_an_empty_table():
    out = quantify(Plate().wells(), standard_curves(Plate().wells()), None, "CAR")
    assert out.empty and list(out.columns[: len(TRANSGENE_COLUMNS)]) == TRANSGENE_COLUMNS


def test_table_round_trips_through_write_tsv(tmp_path):
    wells = Plate().sample("S01_D14", [cq_for(1000)] * 2).sample("S01_D28", [math.nan] * 2).wells()
    bad = Plate("P9", slope=-3.9).sample("S01_D35", [cq_for(1000)] * 2).wells()
    wells = pd.concat([wells, bad])
    out = quantify(
        wells,
        standard_curves(wells),
        sheet(
            ("S01_D14", "S01", 14, 500), ("S01_D28", "S01", 28, 500), ("S01_D35", "S01", 35, 500)
        ),
        "CAR",
    )
    path = tmp_path / "transgene.tsv"
    write_tsv(out, path, columns=TRANSGENE_COLUMNS, sort_by=TRANSGENE_SORT_BY)
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    blq = [line.split("\t")[header.index("blq")] for line in lines[1:]]
    assert blq == ["false", "true", ""]  # day 14, 28, 35 (failed curve: unknown)
    back = read_tsv(path)
    assert back["copies_per_ug"].iloc[0] == pytest.approx(2000)


def test_hand_made_export_end_to_end():
    from pathlib import Path

    path = Path(__file__).parent / "data" / "qpcr" / "quantstudio_semicolon_decimal_comma.csv"
    wells = read_plate(path)
    curve = standard_curves(wells).iloc[0]
    # Built with Cq = 38 − 3.32·log10(q) ± 0.02 symmetric per level.
    assert curve["slope"] == pytest.approx(-3.32) and curve["intercept"] == pytest.approx(38.0)
    out = quantify(
        wells,
        standard_curves(wells),
        sheet(("S01_D14", "S01", 14, 250), ("S01_D28", "S01", 28, 250)),
        "CAR",
    )
    out = out.set_index("sample")
    # B3 (Cq 35.00) is omitted in the export: 2 replicates of exactly 1000 copies.
    assert out.loc["S01_D14", "n_rep"] == 2
    assert out.loc["S01_D14", "copies_per_ug"] == pytest.approx(1000 / 0.25)
    assert blq(out.loc["S01_D28", "blq"]) is True and out.loc["S01_D28", "n_pos"] == 0


# --------------------------------------------------------------------------- simulated truth


def simulate_plate(rng, plate, true_copies, slope, intercept, cq_noise, reps=3):
    """Wells from a known curve: Poisson molecules per well, Gaussian Cq read noise."""
    rows = []

    def well(task, sample, expected, quantity=math.nan):
        molecules = rng.poisson(expected)
        cq = (
            intercept + slope * math.log10(molecules) + rng.normal(0, cq_noise)
            if molecules > 0
            else math.nan
        )
        rows.append(
            {
                "plate": plate,
                "well": f"W{len(rows) + 1}",
                "sample": sample,
                "target": "CAR",
                "task": task,
                "cq": cq,
                "quantity": quantity,
                "omit": False,
            }
        )

    for q in (1e1, 1e2, 1e3, 1e4, 1e5, 1e6):
        for _ in range(reps):
            well("standard", "", q, q)
    for _ in range(3):
        well("ntc", "", 0.0)
    for sample, copies in true_copies.items():
        for _ in range(reps):
            well("unknown", sample, copies)
    return rows


def test_simulated_truth_recovery():
    rng = np.random.default_rng(20240611)
    dna_ng, cq_noise, reps = 500.0, 0.1, 3
    truth = {}  # sample → true copies per µg
    rows = []
    for p in range(4):
        slope = [-3.32, -3.40, -3.25, -3.35][p]
        per_ug = dict(
            zip(
                [f"P{p}_S{i:02d}" for i in range(25)],
                np.concatenate(
                    [
                        10 ** rng.uniform(2.0, 5.3, 19),  # quantifiable
                        [0.0, 0.0, 0.0],
                        [4.0, 6.0, 2.0],
                    ]
                ),
                strict=True,
            )
        )
        truth.update(per_ug)
        per_reaction = {s: c * dna_ng / 1000 for s, c in per_ug.items()}
        rows += simulate_plate(rng, f"plate{p}", per_reaction, slope, 38.0, cq_noise, reps)
    wells = pd.DataFrame(rows)
    curves = standard_curves(wells)
    assert curves["pass"].all()
    samples = pd.DataFrame(
        {"sample": list(truth), "subject_id": "S", "day": range(len(truth)), "dna_ng": dna_ng}
    )
    out = quantify(wells, curves, samples, "CAR").set_index("sample")

    z_scores, log_ratios = [], []
    for sample, true_per_ug in truth.items():
        row = out.loc[sample]
        lam = true_per_ug * dna_ng / 1000  # true copies per reaction
        if true_per_ug == 0:
            assert blq(row["blq"]) is True and row["n_pos"] == 0  # zero copies: never amplified
            continue
        if lam < 10:  # below the lowest standard (10 copies/reaction)
            assert blq(row["blq"]) is True
            continue
        assert blq(row["blq"]) is False
        # Expected error of log10(mean of 3 wells): Cq read noise and Poisson sampling,
        # plus the plate's calibration error (a 6-level curve whose 10-copy standards
        # scatter by Poisson: about 0.03 log10 for this design), shared by its samples.
        per_well_var = (cq_noise / 3.32) ** 2 + 1 / (lam * math.log(10) ** 2)
        se = math.sqrt(per_well_var / reps + 0.03**2)
        log_ratio = math.log10(row["copies_per_ug"] / true_per_ug)
        z_scores.append(log_ratio / se)
        log_ratios.append(log_ratio)
    z = np.array(z_scores)
    assert len(z) > 60
    assert np.abs(z).max() < 4.0  # every sample within its expected error
    assert abs(np.mean(log_ratios)) < 0.05  # no systematic bias beyond 12 %
    assert 0.4 < z.std() < 1.5  # the error model is about right
