"""B-cell aplasia, Kaplan–Meier summaries, dose proportionality and exposure–response.

Expected values are constructed profiles with known answers, lifelines' Kaplan–Meier on
the same data, an independent least-squares computation written here with numpy and the
t distribution, and scipy's tests on groups built here from the inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times
from scipy import stats

from ckpk.pd import aplasia_by_dose, aplasia_profile, b_cell_table
from ckpk.pd.exposure_response import endpoint_kind, exposure_response, exposure_table
from ckpk.pk.dose_proportionality import acceptance_interval, dose_proportionality
from ckpk.survival import kaplan_meier


def profile(*points: tuple[float, float | str]) -> pd.DataFrame:
    """(day, value) pairs; the value "BLQ" is a sample below the LLOQ."""
    return pd.DataFrame(
        {
            "day": [d for d, _ in points],
            "value": [math.nan if v == "BLQ" else v for _, v in points],
            "blq": [v == "BLQ" for _, v in points],
        }
    )


# ------------------------------------------------------------------ B-cell aplasia
def test_aplasia_with_reconstitution() -> None:
    row = aplasia_profile(profile((-7, 150), (1, 40), (7, 0.4), (14, "BLQ"), (90, 0.5), (180, 35)))
    assert row["baseline_day"] == -7 and row["baseline_cells_per_ul"] == 150
    assert row["nadir_day"] == 14 and row["nadir_blq"] and math.isnan(row["nadir_cells_per_ul"])
    assert row["aplasia_onset_day"] == 7 and row["reconstitution_day"] == 180
    assert row["aplasia_duration_days"] == 173 and row["censored"] is False
    assert row["flags"] == ""


def test_aplasia_without_reconstitution_is_censored() -> None:
    row = aplasia_profile(profile((-3, 90), (7, "BLQ"), (28, "BLQ"), (90, 0.8)))
    assert row["aplasia_onset_day"] == 7 and "reconstitution_day" not in row
    assert row["aplasia_duration_days"] == 83 and row["censored"] is True
    assert "lower bound" in row["flags"]


def test_blq_counts_as_below_whatever_its_reading() -> None:
    """A BLQ sample is below the threshold even if its reading (below an LLOQ of 3)
    is above 1 cell/µL."""
    table = profile((-7, 100), (7, 2.5), (14, 30))
    table.loc[1, "blq"] = True
    row = aplasia_profile(table, threshold=1.0)
    assert row["aplasia_onset_day"] == 7 and row["reconstitution_day"] == 14


def test_no_baseline_and_non_depleting_subject() -> None:
    row = aplasia_profile(profile((1, 120), (7, 80), (28, 95)))
    assert "no baseline" in row["flags"] and "no aplasia" in row["flags"]
    assert "aplasia_onset_day" not in row and row["nadir_day"] == 7
    row = aplasia_profile(profile((-7, 100), (0, 90)))
    assert "no sample after the infusion" in row["flags"] and "nadir_day" not in row


def test_threshold_is_configurable() -> None:
    points = profile((-7, 100), (7, 3.0), (14, 8.0))
    assert "no aplasia" in aplasia_profile(points, threshold=1.0)["flags"]
    assert aplasia_profile(points, threshold=5.0)["aplasia_onset_day"] == 7


def test_b_cell_table_reads_a_concentrations_table() -> None:
    rows = []
    for subject, points in {"S1": [(-7, 150), (7, "BLQ"), (60, 20)], "S2": [(-7, 90)]}.items():
        for day, value in points:
            rows.append(
                {
                    "subject_id": subject,
                    "analyte": "b_cells_per_ul",
                    "day": day,
                    "value": "" if value == "BLQ" else value,
                    "blq": "true" if value == "BLQ" else "false",
                }
            )
    rows.append({"subject_id": "S1", "analyte": "car_per_ul", "day": 7, "value": 1, "blq": "false"})
    subjects = pd.DataFrame({"subject_id": ["S1", "S2"], "dose_level": ["DL1", "DL2"]})
    table = b_cell_table(pd.DataFrame(rows), subjects).set_index("subject_id")
    assert table.loc["S1", "aplasia_duration_days"] == 53 and table.loc["S1", "dose_level"] == "DL1"
    assert "no sample after the infusion" in table.loc["S2", "flags"]


# ----------------------------------------------------------------- Kaplan-Meier
@pytest.mark.parametrize(
    ("durations", "events"),
    [
        ([3, 5, 7, 9, 6, 10], [1, 1, 1, 1, 0, 0]),
        ([10, 20, 20, 30, 40, 50, 60], [1, 1, 0, 1, 1, 0, 1]),
        ([5, 8, 12], [1, 1, 1]),
        ([100, 200, 250, 300], [0, 1, 0, 0]),
    ],
)
def test_kaplan_meier_equals_lifelines(durations, events) -> None:
    ours = kaplan_meier(durations, [bool(e) for e in events])
    theirs = KaplanMeierFitter().fit(durations, events)
    expected = theirs.survival_function_["KM_estimate"]
    for t, s in expected.items():
        if t > 0 and t in ours.times:
            assert ours.survival_at(t) == pytest.approx(s)
    ci = median_survival_times(theirs.confidence_interval_)
    for ours_value, theirs_value in (
        (ours.median, theirs.median_survival_time_),
        (ours.median_ci_low, ci.iloc[0, 0]),
        (ours.median_ci_high, ci.iloc[0, 1]),
    ):
        if math.isinf(theirs_value):
            assert math.isnan(ours_value)  # not reached within follow-up
        else:
            assert ours_value == pytest.approx(theirs_value)


def test_kaplan_meier_hand_computed() -> None:
    """Times 2, 4+, 6, 8: S = 3/4 after 2, then 3/4 * 1/2 after 6, then 0 after 8."""
    km = kaplan_meier([2, 4, 6, 8], [True, False, True, True])
    assert km.survival_at(2) == pytest.approx(0.75)
    assert km.survival_at(6) == pytest.approx(0.375)
    assert km.survival_at(8) == 0 and km.median == 6


def test_aplasia_by_dose_counts_and_median() -> None:
    table = pd.DataFrame(
        {
            "dose_level": ["DL1", "DL1", "DL1", "DL2"],
            "aplasia_onset_day": [7, 7, np.nan, 7],
            "aplasia_duration_days": [100, 200, np.nan, 50],
            "censored": pd.array([False, True, pd.NA, False], dtype="boolean"),
            "n_samples": [5, 5, 5, 5],
            "last_day": [300, 207, 300, 300],
        }
    )
    summary = aplasia_by_dose(table).set_index("dose_level")
    dl1 = summary.loc["DL1"]
    assert (dl1["n_aplasia"], dl1["n_reconstituted"], dl1["n_censored"]) == (2, 1, 1)
    assert dl1["n_no_aplasia"] == 1
    expected = KaplanMeierFitter().fit([100, 200], [1, 0]).median_survival_time_
    assert dl1["median_duration_days"] == expected == 100
    assert summary.loc["all", "n_subjects"] == 4


# ----------------------------------------------------------- dose proportionality
def _independent_slope(dose, value):
    x, y = np.log(dose), np.log(value)
    xm = x - x.mean()
    slope = float((xm * (y - y.mean())).sum() / (xm**2).sum())
    resid = y - (y.mean() + slope * xm)
    se = math.sqrt((resid**2).sum() / (len(x) - 2) / (xm**2).sum())
    t = stats.t.ppf(0.95, len(x) - 2)
    return slope, slope - t * se, slope + t * se


def _nca(dose, value):
    subjects = pd.DataFrame(
        {"subject_id": [f"S{i}" for i in range(len(dose))], "dose_level": "x", "dose": dose}
    )
    nca = pd.DataFrame(
        {"subject_id": subjects["subject_id"], "analyte": "car_per_ul", "cmax": value}
    )
    return nca, subjects


def test_exactly_proportional_data() -> None:
    rng = np.random.default_rng(1)
    dose = np.repeat([1e5, 3e5, 1e6, 3e6], 6)
    value = 0.002 * dose * np.exp(rng.normal(0, 0.05, dose.size))
    nca, subjects = _nca(dose, value)
    row = dose_proportionality(nca, subjects, ("cmax",)).iloc[0]
    slope, low, high = _independent_slope(dose, value)
    assert row["slope"] == pytest.approx(slope)
    assert (row["slope_ci90_low"], row["slope_ci90_high"]) == pytest.approx((low, high))
    assert (row["acceptance_low"], row["acceptance_high"]) == pytest.approx(
        (1 + math.log(0.8) / math.log(30), 1 + math.log(1.25) / math.log(30))
    )
    assert row["conclusion"] == "proportional" and row["dose_ratio"] == pytest.approx(30)


def test_less_than_proportional_data() -> None:
    dose = np.repeat([1e5, 1e6, 1e7], 5)
    value = 50 * dose**0.4 * np.exp(np.tile([-0.1, 0, 0.1, 0.05, -0.05], 3))
    nca, subjects = _nca(dose, value)
    row = dose_proportionality(nca, subjects, ("cmax",)).iloc[0]
    assert row["slope"] == pytest.approx(_independent_slope(dose, value)[0])
    assert row["conclusion"] == "not shown"


def test_too_few_doses_and_non_responders() -> None:
    nca, subjects = _nca(np.array([1e5, 1e5, 1e5, 1e6]), np.array([10.0, 12.0, 0.0, 0.0]))
    row = dose_proportionality(nca, subjects, ("cmax",)).iloc[0]
    assert row["conclusion"] == "too few doses" and row["n_excluded"] == 2
    assert math.isnan(row["slope"])
    assert acceptance_interval(10) == pytest.approx((0.9031, 1.0969), abs=1e-4)


# ------------------------------------------------------------- exposure-response
def _clinical(rows):
    return pd.DataFrame(rows, columns=["subject_id", "endpoint", "day", "value"])


def test_binary_endpoint_equals_scipy_on_the_same_groups() -> None:
    subjects = [f"S{i}" for i in range(8)]
    cmax = [5, 10, 40, 80, 120, 300, 0, 900]
    response = ["no", "no", "yes", "no", "yes", "yes", "no", "yes"]
    nca = pd.DataFrame({"subject_id": subjects, "analyte": "car_per_ul", "cmax": cmax})
    clinical = _clinical([(s, "SRI-4", 90, r) for s, r in zip(subjects, response, strict=True)])
    table = exposure_response(clinical, exposure_table(nca, None))
    row = table[table["exposure"] == "cmax car_per_ul"].iloc[0]
    yes = [c for c, r in zip(cmax, response, strict=True) if r == "yes"]
    no = [c for c, r in zip(cmax, response, strict=True) if r == "no"]
    expected = stats.mannwhitneyu(yes, no, alternative="two-sided")
    assert row["kind"] == "binary" and (row["n_yes"], row["n_no"]) == (4, 4)
    assert row["statistic"] == expected.statistic and row["p_value"] == expected.pvalue
    assert row["median_yes"] == np.median(yes)
    assert row["geo_mean_no"] == pytest.approx(math.exp(np.mean(np.log([5, 10, 80]))))


def test_graded_endpoint_trend_equals_spearman() -> None:
    subjects = [f"S{i}" for i in range(6)]
    auc = [10.0, 20.0, 35.0, 50.0, 80.0, 75.0]
    grade = ["0", "0", "1", "1", "2", "3"]
    nca = pd.DataFrame({"subject_id": subjects, "analyte": "car_per_ul", "auc_0_28": auc})
    clinical = _clinical([(s, "CRS grade", 28, g) for s, g in zip(subjects, grade, strict=True)])
    row = exposure_response(clinical, exposure_table(nca, None)).iloc[0]
    expected = stats.spearmanr([int(g) for g in grade], auc)
    assert row["kind"] == "graded" and row["test"] == "Spearman rank correlation"
    assert row["statistic"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)


def test_endpoint_kinds_and_small_groups() -> None:
    assert endpoint_kind(pd.Series(["Yes", "no"])) == "binary"
    assert endpoint_kind(pd.Series(["0", "2", "3"])) == "graded"
    assert endpoint_kind(pd.Series(["mild", "severe"])) == "other"
    nca = pd.DataFrame({"subject_id": ["A", "B"], "analyte": "x", "cmax": [1.0, 2.0]})
    row = exposure_response(
        _clinical([("A", "DLT", 28, "yes"), ("B", "DLT", 28, "no")]), exposure_table(nca, None)
    ).iloc[0]
    assert math.isnan(row["p_value"]) and "no test" in row["note"]
