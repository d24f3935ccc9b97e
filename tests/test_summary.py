"""Dose-level summaries (ckpk.pk.summary) against hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ckpk.pk.summary import (
    PERSISTENCE_COLUMNS,
    SUMMARY_COLUMNS,
    SUMMARY_PARAMETERS,
    geometric_stats,
    natural_key,
    persistence_at_months,
    summary_by_dose,
    summary_parameters,
)

DOCUMENTED_COLUMNS = ["dose_level", "analyte", "parameter", "n", "geo_mean", "geo_cv_pct",
                      "median", "min", "max"]  # fmt: skip


def test_geometric_stats_hand_worked():
    # 10, 20, 40: ln = 2.302585, 2.995732, 3.688879; mean ln = 2.995732 = ln 20, so the
    # geometric mean is 20 (= cube root of 8000). Deviations -ln2, 0, +ln2, so
    # s^2 = 2 (ln 2)^2 / (3 - 1) = (ln 2)^2 = 0.480453, and
    # CV% = 100 sqrt(exp(0.480453) - 1) = 100 sqrt(0.616807) = 78.5370.
    # The 0 and the NaN: 0 counts in median/min/max (n = 4) but not in the geometric
    # statistics (n_geo = 3); NaN counts nowhere. Median of 0, 10, 20, 40 = 15.
    stats = geometric_stats([10.0, 20.0, 40.0, 0.0, float("nan")])
    assert stats["geo_mean"] == pytest.approx(20.0, rel=1e-12)
    assert stats["geo_cv_pct"] == pytest.approx(78.5370, abs=1e-4)
    assert stats["geo_cv_pct"] == pytest.approx(100 * math.sqrt(math.exp(math.log(2) ** 2) - 1))
    assert (stats["n"], stats["n_geo"]) == (4, 3)
    assert (stats["median"], stats["min"], stats["max"]) == (15.0, 0.0, 40.0)


def test_geometric_stats_small_and_empty():
    one = geometric_stats([5.0])
    assert one["geo_mean"] == pytest.approx(5.0) and math.isnan(one["geo_cv_pct"]) and one["n"] == 1
    # Two values 1 and e^2: mean ln = 1 -> geo mean e; s^2 = 2 -> CV = 100 sqrt(e^2 - 1).
    two = geometric_stats([1.0, math.exp(2.0)])
    assert two["geo_mean"] == pytest.approx(math.e)
    assert two["geo_cv_pct"] == pytest.approx(100 * math.sqrt(math.exp(2.0) - 1.0))
    none = geometric_stats([])
    assert none["n"] == 0 and math.isnan(none["geo_mean"]) and math.isnan(none["median"])
    zeros = geometric_stats([0.0, 0.0])
    assert zeros["n"] == 2 and zeros["n_geo"] == 0 and math.isnan(zeros["geo_mean"])


def test_natural_dose_order():
    levels = ["DL10", "DL2", "DL1", "1e7", "3e6"]
    assert sorted(levels, key=natural_key) == ["3e6", "1e7", "DL1", "DL2", "DL10"]


def _inputs():
    subjects = pd.DataFrame(
        {"subject_id": ["S1", "S2", "S3", "S4"], "dose_level": ["DL2", "DL2", "DL10", "DL10"]}
    )
    nca = pd.DataFrame(
        {
            "subject_id": ["S1", "S2", "S3", "S4", "S9"],
            "dose_level": [np.nan, np.nan, np.nan, np.nan, np.nan],
            "analyte": ["car_copies_per_ug"] * 5,
            "unit": ["copies/ug gDNA"] * 5,
            "cmax": [1000.0, 4000.0, 0.0, 500.0, 7.0],
            "tmax": [7.0, 14.0, np.nan, 10.0, 3.0],
            "auc_0_28": [10.0, 40.0, 0.0, 20.0, 1.0],
            "persistence_days": [90.0, 360.0, np.nan, 28.0, 3.0],
        }
    )
    fits = pd.DataFrame(
        {
            "subject_id": ["S1", "S2", "S3", "S4"],
            "analyte": ["car_copies_per_ug"] * 4,
            "converged": [True, True, False, "true"],
            "doubling_time": [1.0, 4.0, 100.0, 2.0],
            "contraction_half_life": [3.0, 3.0, np.nan, 12.0],
            "persistence_half_life": [np.nan, 200.0, np.nan, 50.0],
        }
    )
    return nca, fits, subjects


def test_summary_by_dose_hand_worked():
    nca, fits, subjects = _inputs()
    table = summary_by_dose(nca, fits, subjects)
    assert list(table.columns[: len(DOCUMENTED_COLUMNS)]) == DOCUMENTED_COLUMNS
    assert list(table.columns) == SUMMARY_COLUMNS
    # DL2 before DL10 (natural order); S9 is not in the sheet: dose level "unknown".
    assert list(dict.fromkeys(table["dose_level"])) == ["DL2", "DL10", "unknown"]
    assert len(table) == 3 * len(SUMMARY_PARAMETERS)
    row = table.set_index(["dose_level", "parameter"])

    # DL2 cmax 1000 and 4000: geo mean sqrt(4e6) = 2000; s = SD(ln1000, ln4000) =
    # ln4 / sqrt2, s^2 = (ln 4)^2 / 2 = 0.960906; CV = 100 sqrt(2.614064 - 1) = 127.046 %.
    cmax = row.loc[("DL2", "cmax")]
    assert cmax["geo_mean"] == pytest.approx(2000.0)
    assert cmax["geo_cv_pct"] == pytest.approx(100 * math.sqrt(math.exp(math.log(4) ** 2 / 2) - 1))
    assert cmax["geo_cv_pct"] == pytest.approx(127.046, abs=1e-3)
    assert (cmax["n"], cmax["median"], cmax["min"], cmax["max"]) == (2, 2500.0, 1000.0, 4000.0)
    assert cmax["unit"] == "copies/ug gDNA" and cmax["source"] == "nca"

    # DL10 cmax 0 (non-responder) and 500: n 2, n_geo 1, geo mean 500, no CV.
    cmax10 = row.loc[("DL10", "cmax")]
    assert (cmax10["n"], cmax10["n_geo"]) == (2, 1) and cmax10["geo_mean"] == pytest.approx(500)
    assert math.isnan(cmax10["geo_cv_pct"]) and cmax10["median"] == 250.0

    # Tmax: NaN of the non-responder is not a value; the note says how to read it.
    tmax10 = row.loc[("DL10", "tmax")]
    assert tmax10["n"] == 1 and tmax10["median"] == 10.0
    assert "median" in tmax10["note"] and tmax10["unit"] == "day"
    assert row.loc[("DL2", "auc_0_28"), "unit"] == "copies/ug gDNA*day"

    # Model parameters: estimable values of converged fits only (S3's doubling time of
    # 100 from a fit that did not converge is left out and counted).
    dt10 = row.loc[("DL10", "doubling_time")]
    assert (dt10["n"], dt10["source"]) == (1, "model") and dt10["geo_mean"] == pytest.approx(2)
    assert dt10["n_not_estimable"] == 1
    assert row.loc[("DL2", "persistence_half_life"), "n_not_estimable"] == 1
    dt2 = row.loc[("DL2", "doubling_time")]
    assert dt2["geo_mean"] == pytest.approx(2.0)  # sqrt(1 * 4)
    assert dt2["geo_cv_pct"] == pytest.approx(100 * math.sqrt(math.exp(math.log(4) ** 2 / 2) - 1))
    # Contraction half-life 3, 3: CV exactly 0.
    assert row.loc[("DL2", "contraction_half_life"), "geo_cv_pct"] == pytest.approx(0.0, abs=1e-9)
    assert row.loc[("DL2", "persistence_half_life"), "n"] == 1

    unknown = row.loc[("unknown", "cmax")]
    assert unknown["n"] == 1 and unknown["geo_mean"] == pytest.approx(7.0)
    assert row.loc[("unknown", "doubling_time"), "n"] == 0


def test_summary_reads_the_partial_auc_named_by_its_end_day():
    # nca.partial_auc_end: 14 names the NCA column auc_0_14; the summary follows it and
    # has no auc_0_28 rows. DL2: AUC 10 and 40, geometric mean sqrt(400) = 20.
    nca, fits, subjects = _inputs()
    table = summary_by_dose(nca.rename(columns={"auc_0_28": "auc_0_14"}), fits, subjects, end=14)
    parameters = set(table["parameter"])
    assert "auc_0_14" in parameters and "auc_0_28" not in parameters
    auc = table.set_index(["dose_level", "parameter"]).loc[("DL2", "auc_0_14")]
    assert auc["geo_mean"] == pytest.approx(20.0) and auc["unit"] == "copies/ug gDNA*day"
    assert [p for p, _, _ in summary_parameters(14)] == list(dict.fromkeys(table["parameter"]))


def test_summary_by_dose_pooled_and_empty():
    nca, fits, subjects = _inputs()
    table = summary_by_dose(nca, fits, subjects, pooled_label="all")
    pooled = table[(table["dose_level"] == "all") & (table["parameter"] == "cmax")].iloc[0]
    assert pooled["n"] == 5 and pooled["n_geo"] == 4 and pooled["max"] == 4000.0
    # geo mean of 1000, 4000, 500, 7 = (1.4e10)^(1/4)
    assert pooled["geo_mean"] == pytest.approx(1.4e10**0.25)
    empty = summary_by_dose(nca.iloc[0:0], fits.iloc[0:0], subjects)
    assert list(empty.columns) == SUMMARY_COLUMNS and empty.empty
    no_fits = summary_by_dose(nca, pd.DataFrame(), None)
    assert (no_fits["parameter"] == "doubling_time").sum() == 1  # nca has no dose: unknown
    assert set(no_fits["dose_level"]) == {"unknown"}


def test_nca_dose_level_used_when_the_sheet_is_missing():
    nca, fits, _ = _inputs()
    nca = nca.assign(dose_level=["A", "A", "B", "B", ""])
    table = summary_by_dose(nca, fits.iloc[0:0], None)
    assert list(dict.fromkeys(table["dose_level"])) == ["A", "B", "unknown"]


def _concentrations():
    rows = [
        # subject, day, value, blq
        ("S1", -7, 900.0, False),  # screening: never counts
        ("S1", 90, 50.0, False),
        ("S1", 180, 20.0, False),
        ("S1", 365, np.nan, True),
        ("S2", -7, 900.0, False),
        ("S2", 60, 30.0, False),
        ("S2", 400, np.nan, False),  # missing sample: not a follow-up visit
        ("S3", 90, 0.0, True),  # intermittently BLQ ...
        ("S3", 180, 12.0, False),  # ... still present later
        ("S4", 80, 15.0, False),  # early month-3 visit, inside the 15 % window (>= 77.35)
        ("S4", 170, np.nan, True),
    ]
    table = pd.DataFrame(rows, columns=["subject_id", "day", "value", "blq"])
    return table.assign(analyte="car_copies_per_ug", lloq=10.0)


def test_persistence_at_months_hand_worked():
    subjects = pd.DataFrame(
        {"subject_id": ["S1", "S2", "S3", "S4", "S5"],
         "dose_level": ["DL1", "DL1", "DL2", "DL2", "DL2"]}
    )  # fmt: skip
    table = persistence_at_months(_concentrations(), subjects, pooled_label="all")
    assert list(table.columns) == PERSISTENCE_COLUMNS
    got = {
        (r.dose_level, r.month): (r.n_subjects, r.n_evaluable, r.n_quantifiable, r.pct_quantifiable)
        for r in table.itertuples()
    }
    nan = float("nan")
    # Window starts: 91*0.85 = 77.35, 183*0.85 = 155.55, 365*0.85 = 310.25.
    expected = {
        # DL1: S1 followed to 365, quantifiable to 180; S2 followed only to day 60.
        ("DL1", 3): (2, 1, 1, 100.0),
        ("DL1", 6): (2, 1, 1, 100.0),
        ("DL1", 12): (2, 1, 0, 0.0),
        # DL2: S3 last 180 (quantifiable); S4 quantifiable day 80, BLQ day 170; S5 no data.
        ("DL2", 3): (3, 2, 2, 100.0),
        ("DL2", 6): (3, 2, 1, 50.0),
        ("DL2", 12): (3, 0, 0, nan),
        ("all", 3): (5, 3, 3, 100.0),
        ("all", 6): (5, 3, 2, 200.0 / 3.0),
        ("all", 12): (5, 1, 0, 0.0),
    }
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key][:3] == values[:3], key
        if math.isnan(values[3]):
            assert math.isnan(got[key][3]), key
        else:
            assert got[key][3] == pytest.approx(values[3]), key
    days = table.drop_duplicates("month").set_index("month")
    assert list(days["day_nominal"]) == [91, 183, 365]
    assert days.loc[3, "window_start_day"] == pytest.approx(77.35)


def test_persistence_without_sheet_and_custom_months():
    table = persistence_at_months(_concentrations(), None, months=(1,), window=0.0)
    assert list(table["dose_level"]) == ["unknown"]
    row = table.iloc[0]
    # Day 30 exactly: S1 (to 365), S2 (60), S3 (180), S4 (170) evaluable; all quantifiable
    # at or after day 30 (S1 90, S2 60, S3 180, S4 80).
    assert (row["n_subjects"], row["n_evaluable"], row["n_quantifiable"]) == (4, 4, 4)


def test_persistence_km_equals_lifelines():
    """Kaplan-Meier persistence by dose level against lifelines on the same data: a
    quantifiable last sample is censored, a non-responder is lost on day 0."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    from ckpk.pk.persistence import persistence_km

    days = [0.0, 28.0, 56.0, 90.0, 180.0, 270.0, 365.0, 120.0]
    censored = [False, False, False, True, False, True, True, False]
    nca = pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(8)],
            "analyte": "car_copies_per_ug",
            "persistence_days": days,
            "persistence_censored": censored,
        }
    )
    levels = {f"S{i}": "DL1" if i < 4 else "DL2" for i in range(8)}
    table = persistence_km(nca, levels).set_index(["dose_level", "analyte"])
    row = table.loc[("all", "car_copies_per_ug")]
    kmf = KaplanMeierFitter().fit(days, [not c for c in censored])
    assert row["median_days"] == kmf.median_survival_time_
    ci = median_survival_times(kmf.confidence_interval_)
    assert row["median_ci_low_days"] == ci.iloc[0, 0]
    high = ci.iloc[0, 1]
    assert (math.isinf(high) and math.isnan(row["median_ci_high_days"])) or (
        row["median_ci_high_days"] == high
    )
    for month, day in ((3, 91), (6, 183), (12, 365)):
        expected = 100 * float(kmf.predict(day))
        assert row[f"pct_persisting_month_{month}"] == pytest.approx(expected)
    assert (row["n_subjects"], row["n_lost"], row["n_censored"]) == (8, 5, 3)
    dl1 = table.loc[("DL1", "car_copies_per_ug")]
    assert dl1["n_subjects"] == 4 and dl1["n_censored"] == 1
