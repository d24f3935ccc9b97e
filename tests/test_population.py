"""The population fit (``ckpk popfit``, docs/rules.md "Population kinetics").

The truth comes from the simulator (:mod:`ckpk.simulate.population`), which draws every
subject from stated population parameters through the hierarchy the fit assumes; the
individual fit (:func:`ckpk.pk.model.fit_table`) on the same sparse readings is the
comparison the population fit has to beat.

Figures these tests rest on (benchmarks/README.md, "Population fit": 20 simulated trials
of 30 subjects, 3 dose levels, 6-8 readings each, about a third BLQ): no fit diverged, 97 %
of the 245 reported 95 % intervals of the population parameters hold the truth (15 of
260 values left empty), and the subjects' mean |ln error| is 0.16 for Cmax and 0.11 for
AUC0-28 against 1.08 and 0.45 for ``ckpk fit`` on the subjects both estimate, which
``ckpk fit`` does for only about 10 of the 30. That calibration costs a fit per trial,
more than CI's budget holds, so it lives in ``benchmarks/popfit.py``; here one trial
(seed 1) checks recovery.

The sampler runs only in the tests marked ``workflow`` (one xdist group, about 3 minutes
on 2 cores); the others check the rules around it without JAX.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ckpk.cli import build_parser
from ckpk.pk.kinetics import SteinParameters, stein_auc, stein_curve
from ckpk.pk.model import fit_table
from ckpk.pk.population import MIN_SUBJECTS, chosen_analytes, fit_population
from ckpk.pk.population_cache import PopulationCache
from ckpk.pk.population_data import NON_RESPONDER, dose_covariate, population_data
from ckpk.pk.population_mcmc import DEFAULT_SEED, diagnostics, passes
from ckpk.pk.population_predict import Individual, auc, curve
from ckpk.pk.subject_summary import subject_summary
from ckpk.simulate.population import PopulationTruth, simulate_population

PROJECT = Path(__file__).resolve().parents[1]
TYPICAL_NAMES = ("cmax", "tmax", "foldx", "alpha", "beta", "fb", "dose_exponent")


def _truth_of(row: dict, truth: PopulationTruth, reference: float) -> float:
    """The true value of a ``population_fit`` row (Cmax at the fit's reference dose)."""
    name = str(row["parameter"])
    if name == "cmax":
        return truth.cmax * (reference / truth.reference_dose) ** truth.dose_exponent
    if name.startswith("omega_"):
        return truth.omega[name[len("omega_") :]]
    return float(getattr(truth, name))


def _covered(rows: list[dict], truth: PopulationTruth, reference: float) -> dict[str, bool]:
    return {
        str(r["parameter"]): r["ci95_low"] <= _truth_of(r, truth, reference) <= r["ci95_high"]
        for r in rows
        if r["converged"]
    }


# --- the rules around the sampler (fast) -------------------------------------------------


def test_dose_covariate_power_levels_or_none() -> None:
    power = dose_covariate(["DL1", "DL2", "DL3"], np.array([1e5, 3e5, 1e6]))
    assert power.kind == "power" and power.reference == "300000"
    assert np.allclose(power.rows[:, 0], np.log([1 / 3, 1.0, 10 / 3]))
    # One subject without a numeric dose: the levels are the covariate, DL1 the reference.
    levels = dose_covariate(["DL2", "DL1", "DL10"], np.array([3e5, np.nan, 1e7]))
    assert levels.kind == "levels" and levels.reference == "DL1"
    assert levels.names == ("cmax_ratio_DL2", "cmax_ratio_DL10")
    assert levels.rows.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    none = dose_covariate(["DL1", "DL1"], np.array([1e5, 1e5]))
    assert none.kind == "none" and none.rows.shape == (2, 0)


def test_non_responders_are_left_out_with_the_reason() -> None:
    sim = simulate_population(8, seed=4)
    table = sim.concentrations.copy()
    gone = table["subject_id"] == "P001"
    table.loc[gone, "blq"], table.loc[gone, "value"] = True, np.nan
    data = population_data(table, sim.subjects, "car_per_ul")
    assert "P001" not in data.subjects and data.left_out == {"P001": NON_RESPONDER}
    assert data.n_subjects == 7 and np.all(np.diff(data.subject_index) >= 0)


def _as_analytes(table: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    """The first ``counts[analyte]`` subjects of ``table`` again under each analyte."""
    ids = sorted(set(table["subject_id"]))
    parts = []
    for analyte, n in counts.items():
        part = table[table["subject_id"].isin(ids[:n])].copy()
        part["analyte"] = analyte
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_primary_analyte_is_qpcr_when_enough_subjects_else_flow() -> None:
    sim = simulate_population(MIN_SUBJECTS + 2, seed=4)
    rich = _as_analytes(
        sim.concentrations, {"car_copies_per_ug": 8, "car_per_ul": 8, "car_pct_cd3": 8}
    )
    assert chosen_analytes(rich, sim.subjects, "primary") == ["car_copies_per_ug"]
    assert chosen_analytes(rich, sim.subjects, "all") == [
        "car_copies_per_ug",
        "car_pct_cd3",
        "car_per_ul",
    ]
    assert chosen_analytes(rich, sim.subjects, ["car_pct_cd3"]) == ["car_pct_cd3"]
    # Too few qPCR subjects for a fit: the flow count is the primary analyte.
    few_qpcr = _as_analytes(sim.concentrations, {"car_copies_per_ug": 3, "car_per_ul": 8})
    assert chosen_analytes(few_qpcr, sim.subjects, "primary") == ["car_per_ul"]
    # None has enough: the first present is chosen, so that its rows say why not.
    few = _as_analytes(sim.concentrations, {"car_copies_per_ug": 3, "car_pct_cd3": 2})
    assert chosen_analytes(few, sim.subjects, "primary") == ["car_copies_per_ug"]
    with pytest.raises(ValueError, match="primary, all"):
        chosen_analytes(rich, sim.subjects, "first")


def test_cli_analytes_argument() -> None:
    parse = build_parser().parse_args
    assert parse(["popfit", "c.tsv", "-o", "o"]).analytes == "primary"
    assert parse(["popfit", "c.tsv", "-o", "o", "--analytes", "all"]).analytes == "all"
    listed = parse(["popfit", "c.tsv", "-o", "o", "--analytes", "car_per_ul,car_pct_cd3"])
    assert listed.analytes == ["car_per_ul", "car_pct_cd3"]
    with pytest.raises(SystemExit):
        parse(["popfit", "c.tsv", "-o", "o", "--analytes", "cd19"])


def test_cache_key_follows_values_not_row_numbers(tmp_path: Path) -> None:
    sim = simulate_population(MIN_SUBJECTS, seed=4)
    table, sheet = sim.concentrations, sim.subjects
    key = PopulationCache.key("car_per_ul", table, sheet, 28.0, 1)
    moved = table.copy()
    moved.index = moved.index + 100  # same readings, other row numbers
    assert PopulationCache.key("car_per_ul", moved, sheet, 28.0, 1) == key
    changed = table.copy()
    row = changed.index[changed["value"].notna()][0]
    changed.loc[row, "value"] = float(changed.loc[row, "value"]) * 1.01
    other_dose = sheet.copy()
    other_dose.loc[other_dose.index[0], "dose"] = 1.0
    for other in (
        PopulationCache.key("car_per_ul", changed, sheet, 28.0, 1),
        PopulationCache.key("car_per_ul", table, other_dose, 28.0, 1),
        PopulationCache.key("car_per_ul", table, sheet, 14.0, 1),
        PopulationCache.key("car_per_ul", table, sheet, 28.0, 2),
        PopulationCache.key("car_pct_cd3", table, sheet, 28.0, 1),
    ):
        assert other != key


def test_cache_gives_back_rows_and_figures_and_keeps_one_run(tmp_path: Path) -> None:
    figure = tmp_path / "vpc_car_per_ul.png"
    figure.write_bytes(b"\x89PNG not really")
    rows = [
        {"parameter": "cmax", "estimate": np.float64(1.5), "converged": np.bool_(True)},
        {"parameter": "beta", "estimate": math.nan, "converged": False, "flags": None},
        {"parameter": "n", "estimate": np.int64(7), "converged": True, "flags": "µ text"},
    ]
    cache = PopulationCache(tmp_path / "cache")
    assert cache.get("k1") is None
    cache.put("k1", rows, rows[:1], "line", [figure])
    kept = PopulationCache(tmp_path / "cache").get("k1")
    assert kept is not None and kept.log_line == "line"
    expected = pd.DataFrame(rows)
    pd.testing.assert_frame_equal(pd.DataFrame(kept.population), expected)
    assert [f.name for f in kept.figures] == [figure.name]
    assert kept.figures[0].read_bytes() == figure.read_bytes()
    # A later run that uses only another entry removes this one.
    later = PopulationCache(tmp_path / "cache")
    later.put("k2", rows, rows, "other", [])
    (tmp_path / "cache" / "k3.123.part").mkdir()  # left by a crashed run
    later.prune()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k2"]


def test_too_few_subjects_give_empty_rows_with_the_reason() -> None:
    sim = simulate_population(MIN_SUBJECTS - 1, seed=4)
    result = fit_population(sim.concentrations, sim.subjects)
    fit = result.fits["car_per_ul"]
    assert not fit.fitted and "fewer than 6" in fit.reason
    table = result.population_table()
    assert table["estimate"].isna().all() and not table["converged"].any()
    assert set(table["parameter"]) >= {"cmax", "omega_cmax", "dose_exponent", "sigma"}
    subjects = result.subjects_table()
    assert len(subjects) == MIN_SUBJECTS - 1 and subjects["cmax"].isna().all()


def test_vectorised_curve_and_auc_match_the_model() -> None:
    ps = [
        SteinParameters(cmax=50.0, tmax=9.0, foldx=3000.0, alpha=0.2, beta=0.004, fb=0.01),
        SteinParameters(cmax=2.0, tmax=30.0, foldx=10.0, alpha=0.05, beta=0.01, fb=0.3),
    ]
    stacked = Individual(
        *(np.array([[getattr(p, f)] for p in ps]) for f in ("cmax", "tmax", "alpha", "beta", "fb")),
        np.array([[p.foldx] for p in ps]),
    )
    days = np.array([0.0, 1.0, 9.0, 12.5, 28.0, 200.0])
    got = curve(days[None, :], stacked)
    for k, p in enumerate(ps):
        assert np.allclose(got[k], stein_curve(days, p), rtol=1e-12)
        assert math.isclose(float(auc(stacked, 28.0)[k, 0]), stein_auc(p, 0.0, 28.0), rel_tol=1e-10)


def test_diagnostics_tell_mixed_chains_from_disagreeing_ones() -> None:
    rng = np.random.default_rng(0)
    mixed = rng.standard_normal((4, 1000))
    d = diagnostics(mixed)
    assert float(d["rhat"]) < 1.01 and float(d["ess_bulk"]) > 2000 and float(d["ess_tail"]) > 1000
    assert passes(float(d["rhat"]), float(d["ess_bulk"]), float(d["ess_tail"]))
    apart = mixed + np.array([[0.0], [0.0], [0.0], [1.0]])  # one chain elsewhere
    assert float(diagnostics(apart)["rhat"]) > 1.05
    sticky = np.cumsum(rng.standard_normal((4, 1000)) * 0.05, axis=1)  # a random walk
    assert float(diagnostics(sticky)["ess_bulk"]) < 400


def test_cli_seed_default_is_the_fit_default() -> None:
    args = build_parser().parse_args(["popfit", "c.tsv", "-o", "out"])
    assert args.seed == DEFAULT_SEED and args.subjects is None


def test_subject_summary_puts_population_estimates_beside_individual_ones() -> None:
    subjects = pd.DataFrame({"subject_id": ["S1", "S2"], "dose_level": ["DL1", "DL2"]})
    nca = pd.DataFrame({"subject_id": ["S1", "S2"], "analyte": "car_per_ul", "cmax": [10.0, 20.0]})
    population = pd.DataFrame(
        {"subject_id": ["S1"], "analyte": "car_per_ul", "cmax": [12.0], "tmax": [9.0]}
    )
    table = subject_summary(subjects.assign(dose=np.nan), nca, population=population)
    columns = list(table.columns)
    assert columns.index("cmax_pop__car_per_ul") == columns.index("cmax__car_per_ul") + 1
    assert table["cmax_pop__car_per_ul"].tolist()[0] == 12.0
    assert math.isnan(table["cmax_pop__car_per_ul"].tolist()[1])


# --- the sampler (slow: marked workflow, one xdist group) --------------------------------


@pytest.mark.workflow
@pytest.mark.xdist_group("popfit")
def test_recovery_on_a_sparse_trial_beats_individual_fits() -> None:
    """30 subjects, 3 dose levels, 6-8 readings each with BLQ: the 95 % intervals of the
    typical values and the dose exponent cover the truth, and the subjects' Cmax and
    AUC0-28 are closer to the truth than ``ckpk fit``'s on the subjects both estimate."""
    sim = simulate_population(30, seed=1)
    assert sim.concentrations["blq"].mean() > 0.2
    fit = fit_population(sim.concentrations, sim.subjects).fits["car_per_ul"]
    assert fit.samples.divergences == 0
    reference = float(fit.data.covariate.reference)
    rows = {r["parameter"]: r for r in fit.population}
    assert all(rows[name]["converged"] for name in TYPICAL_NAMES), rows
    covered = _covered([rows[n] for n in TYPICAL_NAMES], sim.population, reference)
    assert all(covered.values()), covered
    population = pd.DataFrame(fit.subjects).set_index("subject_id")
    individual = fit_table(sim.concentrations).set_index("subject_id")
    truth = sim.truth.set_index("subject_id")
    assert population["cmax"].notna().sum() >= 27
    for name in ("cmax", "auc_0_28"):
        both = population[name].notna() & individual[name].notna()
        assert both.sum() >= 5
        error_pop = np.abs(np.log(population.loc[both, name] / truth.loc[both, name])).mean()
        error_ind = np.abs(np.log(individual.loc[both, name] / truth.loc[both, name])).mean()
        assert error_pop < error_ind, (name, error_pop, error_ind)


def _zigzag_trial() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Readings that jump a million-fold between every two visits: no Stein curve (no
    curve at all) goes through them."""
    rows = []
    for i in range(MIN_SUBJECTS):
        for j, day in enumerate((1, 4, 7, 10, 14, 21, 28, 56)):
            value = 1e4 if j % 2 else 1e-2
            rows.append(
                {"subject_id": f"Z{i}", "analyte": "car_per_ul", "day": float(day),
                 "value": value, "blq": False, "lloq": 1e-3}
            )  # fmt: skip
    subjects = pd.DataFrame(
        {"subject_id": [f"Z{i}" for i in range(MIN_SUBJECTS)], "dose_level": "DL1", "dose": 1e5}
    )
    return pd.DataFrame(rows), subjects


@pytest.mark.workflow
@pytest.mark.xdist_group("popfit")
def test_a_fit_that_fails_its_checks_reports_nothing() -> None:
    concentrations, subjects = _zigzag_trial()
    result = fit_population(concentrations, subjects)
    fit = result.fits["car_per_ul"]
    assert fit.samples.divergences > 0
    table = result.population_table()
    assert not table["converged"].any() and table["estimate"].isna().all()
    assert table["flags"].str.contains("divergent transition").all()
    assert table["rhat"].notna().all()  # the diagnostics are still reported
    per_subject = result.subjects_table()
    assert per_subject["cmax"].isna().all() and not per_subject["converged"].any()


@pytest.mark.workflow
@pytest.mark.xdist_group("popfit")
def test_cli_and_cached_refit_write_identical_bytes(tmp_path: Path) -> None:
    """The CLI, a second fit and the cached fit give byte-identical tables and figures."""
    from ckpk.pk.population_io import run_popfit

    sim = simulate_population(MIN_SUBJECTS + 2, seed=5)
    concentrations = tmp_path / "concentrations.tsv"
    subjects = tmp_path / "subjects.tsv"
    sim.concentrations.to_csv(concentrations, sep="\t", index=False)
    sim.subjects.to_csv(subjects, sep="\t", index=False)
    command = [sys.executable, "-m", "ckpk.cli", "popfit", str(concentrations)]
    command += ["--subjects", str(subjects), "-o", str(tmp_path / "cli")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs, logs = [tmp_path / "cli"], []
    for run in ("fitted", "cached"):
        out = tmp_path / run
        logs.append(
            run_popfit(
                concentrations,
                subjects,
                out / "population_fit.tsv",
                out / "population_subjects.tsv",
                out / "plots",
                cache_dir=tmp_path / "cache",
            )
        )
        outputs.append(out)
    assert "cached fit" not in logs[0][0] and "cached fit" in logs[1][0]
    figures = sorted(p.name for p in (outputs[0] / "plots").glob("*.png"))
    assert "vpc_car_per_ul.png" in figures and "gof_car_per_ul.png" in figures
    assert sum(name.startswith("subject_") for name in figures) == MIN_SUBJECTS + 2
    names = ["population_fit.tsv", "population_subjects.tsv", *(f"plots/{f}" for f in figures)]
    for other in outputs[1:]:
        assert sorted(p.name for p in (other / "plots").glob("*.png")) == figures
        for name in names:
            assert (outputs[0] / name).read_bytes() == (other / name).read_bytes(), name
