"""The Stein 2019 model fit (ckpk.pk.model) against simulation truth and analytic cases.

Every reference number here is made outside the code under test: the true parameters
of profiles simulated in the test (the curve is ckpk.pk.kinetics.stein_curve, which the
simulator shares), finite-difference derivatives, or hand-written profiles whose
answer (not fittable, and why) is known.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import reference_path
from scipy.optimize import approx_fprime

from ckpk.pk import model
from ckpk.pk.concentrations import CONCENTRATION_COLUMNS
from ckpk.pk.kinetics import TYPICAL, SteinParameters, stein_auc, stein_curve
from ckpk.pk.likelihood import ProfileData, neg_log_likelihood
from ckpk.pk.model import MODEL_COLUMN_DOC, MODEL_FIT_COLUMNS, fit_profile, fit_table

RICH_DAYS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 42, 56, 90, 180, 270, 365], dtype=float)
DOCUMENTED_COLUMNS = [
    "subject_id", "analyte", "converged", "cmax", "tmax", "rho", "doubling_time", "alpha",
    "beta", "fb", "auc_0_28", "aic", "flags",
]  # fmt: skip


def draw_subject(rng: np.random.Generator) -> SteinParameters:
    """A subject around the published typical values, log-normal between-subject spread."""
    eta = rng.normal(0.0, 1.0, 6)
    return SteinParameters(
        cmax=TYPICAL.cmax * math.exp(0.5 * eta[0]),
        tmax=TYPICAL.tmax * math.exp(0.25 * eta[1]),
        foldx=TYPICAL.foldx * math.exp(0.5 * eta[2]),
        alpha=TYPICAL.alpha * math.exp(0.3 * eta[3]),
        beta=TYPICAL.beta * math.exp(0.3 * eta[4]),
        fb=TYPICAL.fb * math.exp(0.5 * eta[5]),
    )


def simulate(p: SteinParameters, days: np.ndarray, sigma: float, lloq: float, rng):
    """Readings with log-normal residual error; BLQ below the LLOQ (value 0, as NCA codes it)."""
    reading = stein_curve(days, p) * np.exp(rng.normal(0.0, sigma, days.size))
    blq = reading < lloq
    return np.where(blq, 0.0, reading), blq


# --------------------------------------------------------------------------- contract


def test_columns_follow_config_readme_and_are_documented():
    assert MODEL_FIT_COLUMNS[: len(DOCUMENTED_COLUMNS)] == DOCUMENTED_COLUMNS
    assert list(MODEL_COLUMN_DOC) == MODEL_FIT_COLUMNS
    assert len(set(MODEL_FIT_COLUMNS)) == len(MODEL_FIT_COLUMNS)


@pytest.mark.parametrize("full", [True, False])
def test_analytic_gradient_matches_finite_differences(full):
    rng = np.random.default_rng(11)
    data = ProfileData(
        RICH_DAYS[2:],
        np.log(stein_curve(RICH_DAYS[2:], TYPICAL)) + rng.normal(0, 0.3, 12),
        RICH_DAYS[:2],
        np.log([20.0, 20.0]),
    )
    for _ in range(4):
        theta = np.array(
            [math.log(2e4), math.log(9.0), math.log(3000.0), math.log(0.15), -3.0, -4.0, -1.2]
        ) + rng.normal(0, 0.3, 7)
        analytic = neg_log_likelihood(theta, data, full)[1]
        numeric = approx_fprime(theta, lambda x: neg_log_likelihood(x, data, full)[0], 1e-7)
        if not full:  # beta and Fb do not exist in the reduced model
            numeric[[4, 5]] = 0.0
        assert np.max(np.abs(analytic - numeric)) <= 1e-5 * np.max(np.abs(analytic))


# --------------------------------------------------------------------------- recovery


def test_noise_free_typical_profile_is_recovered_exactly():
    level = stein_curve(RICH_DAYS, TYPICAL)
    fit = fit_profile(RICH_DAYS, level, np.zeros(RICH_DAYS.size, bool), lloq=1.0)
    assert fit["converged"] and fit["model"] == "full"
    for name in ("cmax", "tmax", "foldx", "alpha", "beta", "fb"):
        assert fit[name] == pytest.approx(getattr(TYPICAL, name), rel=1e-3), name
    assert fit["rho"] == pytest.approx(math.log(3900.0) / 9.3, rel=1e-3)
    assert fit["doubling_time"] == pytest.approx(math.log(2) * 9.3 / math.log(3900.0), rel=1e-3)
    assert fit["contraction_half_life"] == pytest.approx(math.log(2) / 0.16, rel=1e-3)
    assert fit["persistence_half_life"] == pytest.approx(math.log(2) / 0.0032, rel=1e-3)
    assert fit["auc_0_28"] == pytest.approx(stein_auc(TYPICAL, 0.0, 28.0), rel=1e-3)
    # No noise: sigma ends on its floor, and the fit says so.
    assert "sigma at its lower bound 0.05" in fit["flags"]


def test_recovery_over_simulated_subjects():
    """40 subjects around TYPICAL, sigma 0.2, rich sampling: median |relative error|."""
    rng = np.random.default_rng(2019)
    errors: dict[str, list[float]] = {"cmax": [], "tmax": [], "alpha": [], "auc_0_28": []}
    for _ in range(40):
        truth = draw_subject(rng)
        value, blq = simulate(truth, RICH_DAYS, 0.2, lloq=5.0, rng=rng)
        fit = fit_profile(RICH_DAYS, value, blq, lloq=5.0)
        assert fit["converged"], fit["flags"]
        reference = {
            "cmax": truth.cmax,
            "tmax": truth.tmax,
            "alpha": truth.alpha,
            "auc_0_28": stein_auc(truth, 0.0, 28.0),
        }
        for name, true_value in reference.items():
            errors[name].append(abs(fit[name] / true_value - 1.0))
    median = {name: float(np.median(v)) for name, v in errors.items()}
    assert median["cmax"] <= 0.10, median
    assert median["auc_0_28"] <= 0.10, median
    assert median["tmax"] <= 0.15, median
    assert median["alpha"] <= 0.25, median


def test_standard_errors_cover_the_truth():
    """At sigma 0.3 the 95 % intervals x*exp(±1.96 se/x) hold the true value ~90-95 % of the time.

    (At this noise the median error of Cmax is ~15 %, so SEs matter; without the
    n/(n-k) correction coverage was ~82 %.) Fits whose Tmax sits on a sampling day have
    no tmax SE and are left out of the Tmax count.
    """
    rng = np.random.default_rng(7)
    hits: dict[str, list[bool]] = {"cmax": [], "tmax": [], "alpha": [], "auc_0_28": []}
    for _ in range(40):
        truth = draw_subject(rng)
        value, blq = simulate(truth, RICH_DAYS, 0.3, lloq=5.0, rng=rng)
        fit = fit_profile(RICH_DAYS, value, blq, lloq=5.0)
        reference = {
            "cmax": truth.cmax,
            "tmax": truth.tmax,
            "alpha": truth.alpha,
            "auc_0_28": stein_auc(truth, 0.0, 28.0),
        }
        for name, true_value in reference.items():
            x, se = fit[name], fit[f"{name}_se"]
            if name == "tmax" and "likelihood corner" in fit["flags"]:
                assert math.isnan(se)  # Tmax on a sampling day: no SE, by design
                continue
            assert se > 0, (name, fit["flags"])
            half_width = 1.96 * se / x
            hits[name].append(x * math.exp(-half_width) <= true_value <= x * math.exp(half_width))
    coverage = {name: float(np.mean(v)) for name, v in hits.items()}
    assert all(c >= 0.8 for c in coverage.values()), coverage


def test_mono_exponential_decline_chooses_reduced_model():
    truth = SteinParameters(cmax=500.0, tmax=8.0, foldx=200.0, alpha=0.12, beta=0.12, fb=0.0)
    days = np.array([0, 2, 4, 7, 10, 14, 21, 28, 35, 42, 56], dtype=float)
    rng = np.random.default_rng(3)
    value, blq = simulate(truth, days, 0.15, lloq=0.5, rng=rng)
    fit = fit_profile(days, value, blq, lloq=0.5)
    assert fit["converged"]
    assert fit["model"] == "reduced"
    assert fit["fb"] == 0.0
    assert math.isnan(fit["beta"]) and math.isnan(fit["persistence_half_life"])
    assert "reduced model" in fit["flags"]
    assert fit["alpha"] == pytest.approx(0.12, rel=0.15)


def test_short_profile_tries_only_the_reduced_model():
    days = np.array([0, 4, 7, 10, 14, 21, 28], dtype=float)
    fit = fit_profile(days, stein_curve(days, TYPICAL), np.zeros(7, bool), lloq=1.0)
    assert fit["converged"] and fit["model"] == "reduced"
    assert "full model not tried: 7 observations < 9" in fit["flags"]


def test_no_fit_with_as_many_observations_as_parameters():
    """5 observations and the reduced model's 5 parameters: no residual degree of freedom,
    so nothing is fitted (n >= k + 2 is required) and no SE from zero df is reported."""
    days = np.array([0, 4, 7, 14, 28], dtype=float)
    fit = fit_profile(days, stein_curve(days, TYPICAL), np.zeros(5, bool), lloq=1.0)
    assert fit["converged"] is False and "too few observations (5 < 7" in fit["flags"]
    for name in ("cmax", "alpha", "cmax_se", "sigma", "aic"):
        assert math.isnan(fit[name]), name


@pytest.mark.parametrize("lloq", [1.0, 10.0, 100.0, 500.0])
def test_unseen_rise_gives_no_expansion_estimate(lloq):
    """Only a BLQ sample before the peak: a BLQ at its LLOQ is not "a rise", so foldx,
    rho and the doubling time cannot be known, whatever the LLOQ (they used to come out
    as the optimiser's start value, 3900, or depend on the LLOQ)."""
    short = fit_profile([0, 7, 14, 21, 28], [0, 5000, 1000, 300, 100], [True] + [False] * 4, lloq)
    assert short["converged"] is False and "too few observations" in short["flags"]
    days = [0, 7, 14, 21, 28, 42, 56, 90]
    value = [0, 5000, 1000, 300, 100, 60, 40, 20]
    fit = fit_profile(days, value, [True] + [False] * 7, lloq)
    for result in (short, fit):
        for name in ("foldx", "rho", "doubling_time"):
            assert math.isnan(result[name]), (name, result["flags"])
    assert fit["converged"], fit["flags"]
    assert "not estimable: cmax, tmax, foldx (only BLQ samples before day 7" in fit["flags"]
    assert "rho" in fit["flags"] and "doubling_time" in fit["flags"]
    # What the decline determines is still reported.
    assert math.isfinite(fit["alpha"]) and math.isfinite(fit["contraction_half_life"])


def test_sparse_profile_chooses_the_reduced_model_by_aicc():
    """Plain AIC preferred the two-phase model here (-2.62 vs 0.04); AICc does not."""
    days = [0, 1, 4, 7, 10, 14, 21, 28, 56, 90, 180]
    value = [0, 0, 300, 5000, 15000, 6000, 800, 200, 0, 0, 0]
    blq = [v == 0 for v in value]
    fit = fit_profile(days, value, blq, lloq=50.0)
    assert fit["converged"] and fit["model"] == "reduced"
    assert "no persistence phase to estimate" in fit["flags"]
    full = fit_profile(days, value, blq, lloq=50.0, reduced="never")
    reduced = fit_profile(days, value, blq, lloq=50.0, reduced="always")
    n, k_full, k_reduced = 11, 7, 5
    for row, k in ((full, k_full), (reduced, k_reduced)):
        assert row["aicc"] == pytest.approx(row["aic"] + 2 * k * (k + 1) / (n - k - 1))
    assert reduced["aicc"] < full["aicc"]


def test_fit_is_deterministic_and_ignores_screening_samples():
    rng = np.random.default_rng(5)
    value, blq = simulate(TYPICAL, RICH_DAYS, 0.3, lloq=20.0, rng=rng)
    first = fit_profile(RICH_DAYS, value, blq, lloq=20.0)
    again = fit_profile(RICH_DAYS, value, blq, lloq=20.0)
    with_screening = fit_profile(
        np.r_[-7.0, RICH_DAYS], np.r_[1e6, value], np.r_[False, blq], lloq=20.0
    )
    for name in first:
        if isinstance(first[name], float) and math.isnan(first[name]):
            assert math.isnan(again[name]) and math.isnan(with_screening[name])
        else:
            assert first[name] == again[name] == with_screening[name], name


# --------------------------------------------------------------------------- not fittable


@pytest.mark.parametrize(
    ("day", "value", "blq", "reason"),
    [
        ([0, 7, 14, 28, 90], [0, 0, 0, 0, 0], [True] * 5, "non-responder"),
        ([0, 14], [5.0, 800.0], [False, False], "too few quantifiable"),
        ([0, 7, 14, 28, 56], [100.0] * 5, [False] * 5, "no rise"),
        ([0, 7, 14, 28, 56], [100.0] * 5, [False] * 5, "no decline"),
        ([0, 4, 7, 10, 14], [1.0, 10.0, 100.0, 1000.0, 5000.0], [False] * 5, "no decline"),
        ([7, 10, 14, 21, 28], [900.0, 500.0, 200.0, 90.0, 30.0], [False] * 5, "no rise"),
        ([], [], [], "no observation"),
        ([-7, -1], [10.0, 12.0], [False, False], "no observation"),
    ],
)
def test_unfittable_profiles_say_why(day, value, blq, reason):
    fit = fit_profile(day, value, blq, lloq=1.0)
    assert fit["converged"] is False
    assert reason in fit["flags"]
    assert math.isnan(fit["cmax"]) and math.isnan(fit["aic"])


def test_blq_without_lloq_is_left_out_with_a_flag():
    days = RICH_DAYS
    value = stein_curve(days, TYPICAL)
    blq = value < 50.0
    fit = fit_profile(days, np.where(blq, np.nan, value), blq, lloq=None)
    assert fit["n_blq"] == 0 and fit["n_obs"] == int((~blq).sum())
    assert f"{int(blq.sum())} BLQ observation(s) without an LLOQ left out" in fit["flags"]


def test_bad_arguments_never_crash():
    fit = fit_profile([0, 1], [1.0], [False, False], lloq=1.0)
    assert fit["converged"] is False and "length" in fit["flags"]
    fit = fit_profile([0, 4, 7, 10, 14, 28], ["", "x", 50, 900, 300, 20], [False] * 6, lloq=1.0)
    # Two unreadable values leave 4 observations, fewer than the reduced model's 5 parameters.
    assert fit["converged"] is False and "too few observations" in fit["flags"]
    with pytest.raises(ValueError, match="blq_handling"):
        fit_profile([0], [1.0], [False], blq_handling="zero")


# --------------------------------------------------------------------------- tables and CLI


def _long_table(profiles: dict[str, tuple[SteinParameters, float]], lloq_cell: bool, rng):
    rows = []
    for subject, (truth, sigma) in profiles.items():
        value, blq = simulate(truth, RICH_DAYS, sigma, lloq=50.0, rng=rng)
        for d, v, b in zip(RICH_DAYS, value, blq, strict=True):
            rows.append(
                {
                    "subject_id": subject,
                    "analyte": "car_copies_per_ug",
                    "day": d,
                    "value": np.nan if b else v,
                    "unit": "copies/ug gDNA",
                    "blq": bool(b),
                    "lloq": 50.0 if (lloq_cell and b) else np.nan,
                    "source": "test",
                }
            )
    return pd.DataFrame(rows, columns=CONCENTRATION_COLUMNS)


def test_fit_table_takes_lloq_from_column_or_mapping():
    truth = {"S01": (TYPICAL, 0.1)}
    with_cells = _long_table(truth, lloq_cell=True, rng=np.random.default_rng(1))
    without_cells = _long_table(truth, lloq_cell=False, rng=np.random.default_rng(1))
    a = fit_table(with_cells)
    b = fit_table(without_cells, lloq={"car_copies_per_ug": 50.0})
    c = fit_table(without_cells)
    assert list(a.columns) == MODEL_FIT_COLUMNS
    n_blq = int(with_cells["blq"].sum())
    assert n_blq > 0
    assert a.loc[0, "n_blq"] == b.loc[0, "n_blq"] == n_blq
    assert a.loc[0, "cmax"] == b.loc[0, "cmax"]
    assert c.loc[0, "n_blq"] == 0 and "without an LLOQ" in c.loc[0, "flags"]
    assert a.loc[0, "unit"] == "copies/ug gDNA"


def test_fit_table_empty_and_mixed():
    empty = fit_table(pd.DataFrame(columns=CONCENTRATION_COLUMNS))
    assert list(empty.columns) == MODEL_FIT_COLUMNS and empty.empty
    rng = np.random.default_rng(4)
    table = _long_table({"S02": (TYPICAL, 0.2), "S01": (TYPICAL, 0.2)}, True, rng)
    non_responder = table[table["subject_id"] == "S01"].assign(
        subject_id="S03", value=np.nan, blq=True, lloq=50.0
    )
    result = fit_table(pd.concat([table, non_responder]))
    assert list(result["subject_id"]) == ["S01", "S02", "S03"]
    assert list(result["converged"]) == [True, True, False]
    assert "non-responder" in result.loc[2, "flags"]


def test_cli_fit_round_trip(tmp_path):
    from ckpk.cli import main
    from ckpk.tables import read_tsv, write_tsv

    rng = np.random.default_rng(8)
    truth_a = SteinParameters(cmax=30000.0, tmax=10.0, foldx=2000.0, alpha=0.2, beta=0.004, fb=0.01)
    table = _long_table({"P01": (truth_a, 0.05), "P02": (TYPICAL, 0.05)}, lloq_cell=False, rng=rng)
    table = pd.concat(
        [table, table[table["subject_id"] == "P01"].assign(subject_id="P03", value=0.0, blq=True)]
    )
    source = tmp_path / "concentrations.tsv"
    out = tmp_path / "fits.tsv"
    write_tsv(table, source, columns=CONCENTRATION_COLUMNS)
    assert main(["fit", str(source), "-o", str(out), "--lloq", "car_copies_per_ug=50"]) == 0
    result = read_tsv(out)
    assert list(result.columns) == MODEL_FIT_COLUMNS
    assert list(result["subject_id"]) == ["P01", "P02", "P03"]
    assert list(result["converged"]) == [True, True, False]
    for row, truth in ((0, truth_a), (1, TYPICAL)):
        assert result.loc[row, "cmax"] == pytest.approx(truth.cmax, rel=0.1)
        assert result.loc[row, "tmax"] == pytest.approx(truth.tmax, rel=0.1)
        assert result.loc[row, "alpha"] == pytest.approx(truth.alpha, rel=0.1)
        assert result.loc[row, "auc_0_28"] == pytest.approx(stein_auc(truth, 0, 28), rel=0.1)
    assert result.loc[2, "n_blq"] == len(RICH_DAYS)  # LLOQ came from --lloq
    assert "non-responder" in result.loc[2, "flags"]


def test_parameters_from_row_round_trip():
    row = {"converged": True, "cmax": 1.0, "tmax": 2.0, "foldx": 3.0, "alpha": 0.5,
           "beta": float("nan"), "fb": 0.0}  # fmt: skip
    p = model.parameters_from_row(row)
    assert p == SteinParameters(cmax=1.0, tmax=2.0, foldx=3.0, alpha=0.5, beta=0.5, fb=0.0)
    assert model.parameters_from_row({**row, "converged": False}) is None
    assert model.parameters_from_row({**row, "converged": "true", "cmax": ""}) is None


def test_quality_flags_on_a_profile_the_model_cannot_follow():
    # Expansion, contraction, then a second expansion (as in some CAR T profiles).
    days = [0, 4, 7, 10, 14, 21, 28, 56, 90, 180, 365]
    value = [1.0, 100.0, 1000.0, 10000.0, 3000.0, 300.0, 30.0, 1000.0, 5000.0, 3000.0, 20.0]
    fit = fit_profile(days, value, [False] * 11, lloq=1.0)
    assert fit["converged"]
    assert "poor fit" in fit["flags"], fit


def test_reference_profiles_never_crash():
    """The PKNCA reference profiles (tests/data/shared), incl. edge cases, through fit_table."""
    profiles = pd.read_csv(reference_path("reference", "pk", "profiles.csv"))
    table = pd.DataFrame(
        {
            "subject_id": profiles["subject"],
            "analyte": "car_copies_per_ug",
            "day": profiles["time"],
            "value": profiles["conc"],
            "blq": profiles["conc"] == 0,  # 0 = below LLOQ, empty = missing (README)
        }
    )
    result = fit_table(table, lloq={"car_copies_per_ug": 50.0}).set_index("subject_id")
    assert len(result) == profiles["subject"].nunique()
    assert not result.loc["S5_all_blq", "converged"]
    assert "non-responder" in result.loc["S5_all_blq", "flags"]
    # Six observations are fewer than the simplest model's 5 parameters + 2.
    for short in ("S6_two_tail_pts", "S7_no_day0"):
        assert not result.loc[short, "converged"]
        assert "too few observations (6 < 7" in result.loc[short, "flags"]
    fitted = result.drop(index=["S5_all_blq", "S6_two_tail_pts", "S7_no_day0"])
    assert fitted["converged"].all()
    # V04 rises again after day 42: the fit converges but is flagged, not trusted blindly.
    assert result.loc["V04", "flags"] != ""
