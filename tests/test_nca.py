"""NCA against PKNCA 0.12.1's own results, PKNCA's test-suite figures and hand-worked cases.

The reference (``reference/pk/profiles_pknca.csv``, in ``tests/data/shared`` and
``../shared``) was computed by PKNCA 0.12.1 in R for each profile of ``profiles.csv`` and
each AUC method. The rule: every parameter agrees within 1e-6 relative, or both are
undefined.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import reference_path

from ckpk.errors import InputError
from ckpk.pk.kinetics import TYPICAL, stein_auc, stein_curve
from ckpk.pk.nca import (
    AUC_METHODS,
    NCA_COLUMN_DOC,
    NCA_COLUMNS,
    calc_aucint,
    calc_half_life,
    clean_conc_blq,
    nca_profile,
    nca_table,
)
from ckpk.pk.parameters import NCA_PARAMETERS

# The reference's subjects, named here so that parametrisation reads no file at
# collection time; test_reference_subjects_are_all_tested guards the list.
SUBJECTS = [
    "S1_rich",
    "S2_blq_mid_missing28",
    "S3_sparse_tail",
    "S4_cmax_tie",
    "S5_all_blq",
    "S6_two_tail_pts",
    "S7_no_day0",
    *[f"V{i:02d}" for i in range(1, 13)],
]
# PKNCA's method names → ours: all three AUC methods of the reference.
METHODS = {"lin up/log down": "lin-up/log-down", "linear": "linear", "lin-log": "lin-log"}
# PKNCA parameter → our column, from the registry; the reference names an interval
# parameter after its interval (aucint.last_0_28).
PARAMETERS = {
    f"{p.pknca}_0_28" if p.interval else p.pknca: p.name() for p in NCA_PARAMETERS if p.pknca
}
REL_TOL = 1e-6


@cache
def _reference() -> tuple[pd.DataFrame, pd.DataFrame]:
    profiles = pd.read_csv(reference_path("reference", "pk", "profiles.csv"))
    pknca = pd.read_csv(reference_path("reference", "pk", "profiles_pknca.csv"))
    return profiles, pknca


@cache
def _ours(subject: str, method: str) -> dict:
    profiles, _ = _reference()
    one = profiles[profiles["subject"] == subject]
    return nca_profile(one["time"].to_numpy(float), one["conc"].to_numpy(float), method)


def _pknca(subject: str, pknca_method: str) -> pd.Series:
    _, pknca = _reference()
    rows = pknca[(pknca["subject"] == subject) & (pknca["method"] == pknca_method)]
    assert len(rows) == 1
    return rows.iloc[0]


def _same(expected: float, got: float) -> bool:
    if pd.isna(expected) or pd.isna(got):
        return bool(pd.isna(expected) and pd.isna(got))
    return math.isclose(got, expected, rel_tol=REL_TOL, abs_tol=0.0)


def test_reference_subjects_are_all_tested():
    profiles, pknca = _reference()
    assert sorted(profiles["subject"].unique()) == sorted(SUBJECTS)
    assert set(METHODS) <= set(pknca["method"])


@pytest.mark.parametrize("parameter", list(PARAMETERS))
@pytest.mark.parametrize("pknca_method", list(METHODS))
@pytest.mark.parametrize("subject", SUBJECTS)
def test_matches_pknca(subject: str, pknca_method: str, parameter: str):
    expected = _pknca(subject, pknca_method)[parameter]
    got = _ours(subject, METHODS[pknca_method])[PARAMETERS[parameter]]
    assert _same(expected, got), (
        f"{subject} {pknca_method} {parameter}: PKNCA {expected}, ckpk {got}"
    )


@pytest.mark.parametrize("pknca_method", list(METHODS))
@pytest.mark.parametrize("subject", SUBJECTS)
def test_aucint_all_matches_pknca(subject: str, pknca_method: str):
    """``aucint.all`` exercises the AUCall extrapolation of the same interval machinery."""
    profiles, _ = _reference()
    one = profiles[profiles["subject"] == subject]
    got = calc_aucint(one["conc"], one["time"], 0.0, 28.0, METHODS[pknca_method], "AUCall")
    expected = _pknca(subject, pknca_method)["aucint.all_0_28"]
    assert _same(expected, got.value), f"PKNCA {expected}, ckpk {got.value}"


@pytest.mark.parametrize("method", AUC_METHODS)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_persistence_is_tlast_and_undefined_values_have_a_reason(subject: str, method: str):
    """Persistence is PKNCA's Tlast; a subject without a quantifiable sample persisted 0
    days (said in flags); censored exactly when the last sample is quantifiable."""
    row = _ours(subject, method)
    profiles, _ = _reference()
    profile = profiles[profiles["subject"] == subject].dropna()
    if math.isnan(row["tlast"]):
        assert row["persistence_days"] == 0 and "non-responder" in row["flags"]
        assert row["persistence_censored"] is False
    else:
        assert _same(row["tlast"], row["persistence_days"])
        last = profile.loc[profile["time"] >= 0, "time"].max()
        assert row["persistence_censored"] == (row["tlast"] == last)
    words = {
        "tmax": "tmax",
        "tlast": "tlast",
        "auclast": "auclast",
        "auc_0_28": "auc_0_28",
        "lambda_z": "lambda_z",
        "half_life": "half_life",
        "aucinf_obs": "aucinf_obs",
    }
    for column, word in words.items():
        if pd.isna(row[column]):
            assert word in row["flags"], f"{column} empty without a reason: {row['flags']!r}"


def test_pknca_surprises_on_the_reference_edge_cases():
    # S7: no day 0 → auclast undefined, yet auc_0_28 defined with C(0) = 0.
    s7 = _ours("S7_no_day0", "linear")
    assert math.isnan(s7["auclast"]) and s7["auc_0_28"] > 0
    assert "no day-0 sample" in s7["flags"]
    # S5: all BLQ → Cmax, Clast and AUCs are 0 (not empty), Tmax empty.
    s5 = _ours("S5_all_blq", "lin-up/log-down")
    assert (s5["cmax"], s5["clast"], s5["auclast"], s5["auc_0_28"]) == (0, 0, 0, 0)
    assert math.isnan(s5["tmax"]) and "all samples BLQ" in s5["flags"]
    # S2: the mid-profile BLQ is dropped for auc_0_28 too (cleaned group data).
    s2 = _ours("S2_blq_mid_missing28", "linear")
    assert s2["auc_0_28"] == pytest.approx(141210.0, rel=1e-12)


# ------------------------------------------------------- hand-worked analytic cases


def test_half_life_exactly_one_day():
    # 2, 1, 0.5, 0.25 halve each day; Tmax (day 1) is excluded, 3 points remain.
    row = nca_profile([0, 1, 2, 3, 4], [0, 2, 1, 0.5, 0.25])
    assert row["lambda_z"] == pytest.approx(math.log(2), rel=1e-12)
    assert row["half_life"] == pytest.approx(1.0, rel=1e-12)
    assert row["r_squared"] == pytest.approx(1.0, rel=1e-12)
    assert row["lambda_z_n_points"] == 3
    assert row["aucinf_obs"] == pytest.approx(row["auclast"] + 0.25 / math.log(2), rel=1e-12)


def test_half_life_pknca_test_suite_figures():
    # PKNCA tests/testthat/test-half.life.R: conc 1, 0.5, 0.25, 0.1251 at 0-3 with
    # allow.tmax.in.half.life=TRUE, adj.r.squared.factor=0.01 (tolerance 1e-4 there).
    hl = calc_half_life(
        [1, 0.5, 0.25, 0.1251],
        [0, 1, 2, 3],
        tmax=0,
        tlast=3,
        allow_tmax_in_half_life=True,
        adj_r_squared_factor=0.01,
    )
    assert hl.lambda_z == pytest.approx(0.6929073, rel=1e-6)
    assert hl.half_life == pytest.approx(1.000346, rel=1e-6)
    assert hl.clast_pred == pytest.approx(0.12507, rel=1e-4)
    assert hl.span_ratio == pytest.approx(2.998962, rel=1e-6)
    assert hl.lambda_z_n_points == 4


def test_tmax_point_is_not_in_the_half_life():
    # 1, 0.5, 0.25 at days 0, 1, 2: Tmax is day 0, leaving 2 points (< 3) → undefined.
    row = nca_profile([0, 1, 2], [1, 0.5, 0.25])
    assert math.isnan(row["lambda_z"]) and math.isnan(row["half_life"])
    assert "fewer than 3 points after Tmax (2)" in row["flags"]


def test_linear_trapezoid_by_hand():
    # 0→1: (0+10)/2 = 5; 1→2: (10+6)/2 = 8; 2→4: 2·(6+2)/2 = 8.
    row = nca_profile([0, 1, 2, 4], [0, 10, 6, 2], method="linear")
    assert row["auclast"] == pytest.approx(21.0, rel=1e-12)


def test_log_trapezoid_by_hand():
    # Rising 0→10 stays linear (5); falling intervals use Δt·(C2−C1)/ln(C2/C1):
    # 4/0.510826 = 7.830459 and 8/1.098612 = 7.281916, total 20.11237.
    expected = 5.0 + 1 * (6 - 10) / math.log(6 / 10) + 2 * (2 - 6) / math.log(2 / 6)
    row = nca_profile([0, 1, 2, 4], [0, 10, 6, 2], method="lin-up/log-down")
    assert row["auclast"] == pytest.approx(expected, rel=1e-12)
    assert row["auclast"] == pytest.approx(20.11237, abs=1e-5)


def test_log_trapezoid_never_touches_a_zero():
    # 10 → 0 falls to zero: linear triangle even under lin-up/log-down; 0 → 0 is zero area.
    row = nca_profile([0, 1, 2, 3, 4], [0, 10, 20, 0, 0], method="lin-up/log-down")
    assert row["auclast"] == pytest.approx(5.0 + 15.0, rel=1e-12)
    assert row["aucall"] == pytest.approx(5.0 + 15.0 + 10.0, rel=1e-12)


def test_auc_0_28_interpolates_with_the_interval_rule():
    # End day 3 between days 2 (8) and 4 (2). Linear: C(3) = 5; area 8 + (8+5)/2.
    # The partial AUC is named after its end day: auc_0_3.
    linear = nca_profile([0, 2, 4], [0, 8, 2], method="linear", end=3)
    assert linear["auc_0_3"] == pytest.approx(8 + 6.5, rel=1e-12)
    # Log: C(3) = 8·(2/8)^(1/2) = 4; area 8 + (4−8)/ln(4/8).
    log = nca_profile([0, 2, 4], [0, 8, 2], method="lin-up/log-down", end=3)
    assert log["auc_0_3"] == pytest.approx(8 + (4 - 8) / math.log(0.5), rel=1e-12)
    assert "interpolated (log) between days 2 and 4" in log["flags"]


def test_auc_0_28_without_day_0_starts_from_zero():
    row = nca_profile([2, 4], [8, 2], method="linear", end=3)
    assert row["auc_0_3"] == pytest.approx(8 + 6.5, rel=1e-12)
    assert math.isnan(row["auclast"])
    assert "C(0)=0 assumed" in row["flags"]


def test_auc_0_28_after_tlast_adds_nothing():
    row = nca_profile([0, 7, 14, 21], [0, 100, 50, 20], method="linear")
    assert row["auc_0_28"] == pytest.approx(row["auclast"], rel=1e-12)
    assert "C(28)=0" in row["flags"]


def test_auc_0_28_reaches_a_blq_sample_inside_the_window_linearly():
    # PKNCA aucint picks interval rules with tlast = max(time in window): the triangle
    # 14→21 (50→BLQ) counts, unlike auclast (module docstring, point 4).
    row = nca_profile([0, 7, 14, 21, 28], [0, 100, 50, 0, 0], method="linear")
    assert row["auclast"] == pytest.approx(350 + 525, rel=1e-12)
    assert row["auc_0_28"] == pytest.approx(350 + 525 + 175, rel=1e-12)


def test_auc_0_28_is_nan_like_pknca_after_a_blq_sample_and_unsampled_end():
    # log trapezoid forced between two zeros: R gives 0/log(0/0) = NaN.
    row = nca_profile([0, 7, 14, 21, 56], [0, 100, 50, 0, 0], method="linear")
    assert math.isnan(row["auc_0_28"])
    assert (
        "auc_0_28: the log trapezoid from day 21 to day 28 runs between two zeros, which is "
        "0/0 (PKNCA reports NA): a BLQ sample after Tlast, then the unsampled day 28"
    ) in row["flags"]


def test_clean_conc_blq_keeps_first_and_last_drops_middle():
    c, t = clean_conc_blq([0, 0, 5, 0, 3, 0, np.nan, 0], [0, 1, 2, 3, 4, 5, 6, 7])
    assert t.tolist() == [0, 1, 2, 4, 5, 7]
    assert c.tolist() == [0, 0, 5, 3, 0, 0]


# ------------------------------------------------------- bad and degenerate profiles


def test_all_blq_profile():
    row = nca_profile([0, 7, 14, 28], [0, 0, 0, 0])
    assert row["cmax"] == 0 and row["clast"] == 0 and row["auclast"] == 0
    assert row["auc_0_28"] == 0 and row["aucinf_obs"] == 0
    for column in ("tmax", "tlast", "lambda_z", "half_life"):
        assert math.isnan(row[column])
    # A non-responder persisted 0 days (not "unknown"), so medians by dose count it.
    assert row["persistence_days"] == 0 and row["persistence_censored"] is False
    assert row["n_obs"] == 4 and row["n_blq"] == 4
    assert "all samples BLQ" in row["flags"] and "non-responder" in row["flags"]


def test_single_point_profile():
    row = nca_profile([7], [100.0])
    assert row["cmax"] == 100 and row["tmax"] == 7 and row["tlast"] == 7
    assert math.isnan(row["auclast"]) and math.isnan(row["lambda_z"])
    # aucint: C(0) = 0 then linear up to day 7, nothing after Tlast.
    assert row["auc_0_28"] == pytest.approx(350.0, rel=1e-12)
    assert "auclast" in row["flags"] and "lambda_z" in row["flags"]


def test_flat_profile_has_no_lambda_z():
    row = nca_profile([0, 7, 14, 21, 28], [0, 100, 100, 100, 100])
    assert row["tmax"] == 7
    assert math.isnan(row["lambda_z"]) and math.isnan(row["aucinf_obs"])
    assert "no terminal fit with lambda_z > 0" in row["flags"]


def test_empty_missing_and_screening_only_profiles():
    for day, value in (([], []), ([0, 7], [np.nan, np.nan]), ([-7, -1], [5.0, 3.0])):
        row = nca_profile(day, value)
        assert math.isnan(row["cmax"]) and math.isnan(row["auc_0_28"])
        assert row["flags"] == "no samples on or after day 0"


def test_screening_days_are_left_out():
    with_screening = nca_profile([-7, 0, 7, 14, 21, 28], [900, 0, 100, 50, 25, 12])
    without = nca_profile([0, 7, 14, 21, 28], [0, 100, 50, 25, 12])
    assert with_screening == without


def test_duplicate_day_and_negative_value_are_flagged_not_raised():
    row = nca_profile([0, 7, 7, 14], [0, 100, 90, 50])
    assert math.isnan(row["cmax"]) and "duplicate day 7" in row["flags"]
    row = nca_profile([0, 7, 14, 21], [0, 100, -5, 50])
    assert "day 14: negative or infinite value ignored" in row["flags"]
    assert row["n_obs"] == 3


def test_bad_method_and_end():
    with pytest.raises(InputError, match="unknown AUC method"):
        nca_profile([0, 1], [0, 1], method="log")
    with pytest.raises(InputError, match="positive day"):
        nca_profile([0, 1], [0, 1], end=0)
    table = pd.DataFrame({"subject_id": ["a"], "analyte": ["x"], "day": [0], "value": [1.0]})
    table["blq"] = False
    with pytest.raises(InputError):
        nca_table(table, method="log-log")


# ------------------------------------------------------------------------- nca_table


def _table(blq_value: float) -> pd.DataFrame:
    rows = []
    for day, value in ((0, None), (7, 1000.0), (14, 400.0), (21, 100.0), (28, 30.0), (56, None)):
        blq = value is None
        rows.append(
            {
                "subject_id": "P1",
                "analyte": "car_copies_per_ug",
                "day": day,
                "value": blq_value if blq else value,
                "unit": "copies/ug gDNA",
                "blq": blq,
                "lloq": 25.0,
                "source": "test",
            }
        )
    rows.append(dict(rows[1], analyte="car_per_ul", unit="cells/uL", value=5.0))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("blq_value", [np.nan, 0.0, 12.5])
def test_nca_table_blq_rows_count_as_zero(blq_value: float):
    subjects = pd.DataFrame({"subject_id": ["P1"], "dose_level": ["DL2"]})
    result = nca_table(_table(blq_value), subjects=subjects)
    assert list(result.columns) == NCA_COLUMNS
    assert result["analyte"].tolist() == ["car_copies_per_ug", "car_per_ul"]
    qpcr = result.iloc[0]
    expected = nca_profile([0, 7, 14, 21, 28, 56], [0, 1000, 400, 100, 30, 0])
    for column in ("cmax", "auclast", "auc_0_28", "lambda_z", "aucinf_obs"):
        assert _same(expected[column], qpcr[column])
    assert qpcr["unit"] == "copies/ug gDNA" and qpcr["dose_level"] == "DL2"
    assert qpcr["n_obs"] == 6 and qpcr["n_blq"] == 2
    single = result.iloc[1]
    assert single["cmax"] == 5.0 and "only one measured level" in single["flags"]


def test_nca_table_without_subject_sheet_and_unknown_subject():
    result = nca_table(_table(np.nan))
    assert result["dose_level"].isna().all()
    other = pd.DataFrame({"subject_id": ["P9"], "dose_level": ["DL1"]})
    result = nca_table(_table(np.nan), subjects=other)
    assert result["flags"].str.contains("subject not in the subject sheet").all()


def test_nca_table_empty_input_gives_header_only():
    empty = pd.DataFrame(columns=["subject_id", "analyte", "day", "value", "blq"])
    assert list(nca_table(empty).columns) == NCA_COLUMNS


def test_column_doc_covers_every_column():
    assert list(NCA_COLUMN_DOC) == NCA_COLUMNS


# ------------------------------------------------------------------ Stein 2019 curve


@pytest.mark.parametrize("method", AUC_METHODS)
def test_dense_stein_profile_auc_matches_exact_integral(method: str):
    """auc_0_28 of a densely sampled Stein curve against its exact integral.

    Grid h = 0.1 day with Tmax = 9.3 on the grid (no kink inside an interval). Error
    budget, all from the trapezoid error of each phase:
    * expansion C0·e^(ρt), ρ = ln(3900)/9.3 ≈ 0.889/day, sampled with the linear
      trapezoid (rising): trapezoid/exact = (x/2)·coth(x/2) per interval, x = ρh, so
      the relative error of that phase is (x/2)coth(x/2) − 1 ≈ x²/12 ≈ 6.6e-4;
    * contraction (t > Tmax): |error| ≤ (28 − Tmax)·h²/12·max|C''| with
      max|C''| ≤ Cmax·((1−Fb)α² + Fb·β²) (linear trapezoid bound; the log trapezoid of
      lin-up/log-down is exact for one exponential and within this bound for two).
    The sum is the tolerance; the linear rule over-estimates the convex curve.
    """
    p = TYPICAL
    h = 0.1
    days = np.round(np.arange(0, 280 + 1) * h, 10)
    assert np.any(days == p.tmax)
    levels = stein_curve(days, p)
    row = nca_profile(days, levels, method=method, end=28.0)
    exact = stein_auc(p, 0.0, 28.0)

    x = p.rho * h
    rise_error = stein_auc(p, 0.0, p.tmax) * ((x / 2) / math.tanh(x / 2) - 1)
    max_curv = p.cmax * ((1 - p.fb) * p.alpha**2 + p.fb * p.beta**2)
    fall_error = (28.0 - p.tmax) * h**2 / 12 * max_curv
    tolerance = (rise_error + fall_error) / exact
    assert tolerance < 1e-3  # the budget itself is tight: 0.1 % of the AUC
    error = (row["auc_0_28"] - exact) / exact
    assert 0 < error <= tolerance, f"relative error {error:.3g}, budget {tolerance:.3g}"
