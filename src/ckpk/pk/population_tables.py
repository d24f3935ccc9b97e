"""The rows of ``pk/population_fit.tsv`` and ``pk/population_subjects.tsv`` from the draws.

Honest numbers, as in the individual fit: every value is a posterior median with its 95 %
interval (2.5 and 97.5 % points), and a value is left empty, with the reason in
``flags``, when

* the fit failed: any divergent transition (the sampler may have missed part of the
  posterior), or no fit at all (too few subjects);
* its chains disagree or its draws are too few: R-hat ≥ 1.01, bulk or tail ESS < 400
  (:func:`ckpk.pk.population_mcmc.passes`; R-hat and ESS are still given);
* the data do not inform it: its posterior is nearly as wide as its prior (posterior SD
  at least :data:`PRIOR_DOMINATED` of the prior's, on the sampled scale), so the interval
  would restate the prior. For a subject's parameter the prior is the population's
  prediction before any data (prior SD of the typical value and E[ω²] = 1 of the
  half-normal(1) together); a subject borrows its value from the population when the
  population is informed, and that value is reported.

Subjects whose Cmax, Tmax or α is empty also have an empty AUC, and half-lives follow
their rate constants.
"""

from __future__ import annotations

import math

import numpy as np

from ckpk.pk.parameters import PARTIAL_AUC, POPULATION_FIT_COLUMNS, POPULATION_SUBJECT_ESTIMATES
from ckpk.pk.population_data import PopulationData
from ckpk.pk.population_mcmc import CHAINS, diagnostics, passes
from ckpk.pk.population_predict import auc, individual_parameters
from ckpk.pk.population_priors import CMAX_PRIOR_SD, PRIORS

#: Significant digits of the reported values.
SIGNIFICANT = 4
#: Posterior SD at or above this fraction of the prior SD: the data barely inform it.
PRIOR_DOMINATED = 0.8
#: SD of a half-normal(1) prior: sqrt(1 − 2/π).
_HALF_NORMAL_SD = math.sqrt(1.0 - 2.0 / math.pi)
_LN2 = math.log(2.0)

#: (parameter, kind, sampled site and index, transform to the reported scale, unit)
_TYPICAL = (
    ("cmax", "typical", ("log_cmax", None), np.exp, "U"),
    ("tmax", "typical", ("log_tmax", None), np.exp, "day"),
    ("foldx", "typical", ("log_foldx", None), np.exp, "unitless"),
    ("alpha", "typical", ("log_alpha", None), np.exp, "1/day"),
    ("beta", "typical", ("log_beta", None), np.exp, "1/day"),
    ("fb", "typical", ("logit_fb", None), lambda x: 1.0 / (1.0 + np.exp(-x)), "fraction"),
    ("omega_cmax", "between-subject SD", ("omega", 0), None, "SD of ln"),
    ("omega_tmax", "between-subject SD", ("omega", 1), None, "SD of ln"),
    ("omega_alpha", "between-subject SD", ("omega", 2), None, "SD of ln"),
    ("omega_beta", "between-subject SD", ("omega", 3), None, "SD of ln"),
    ("omega_fb", "between-subject SD", ("omega", 4), None, "SD of logit"),
    ("sigma", "residual", ("sigma", None), None, "SD of ln"),
)
PRIOR_TEXT = {
    "tmax": PRIORS["tmax"].describe(),
    "foldx": PRIORS["foldx"].describe(),
    "alpha": PRIORS["alpha"].describe(),
    "beta": PRIORS["beta"].describe(),
    "fb": PRIORS["fb"].describe(),
    "sigma": PRIORS["sigma"].describe(),
}
#: Columns of ``pk/population_fit.tsv`` (declared in the registry, :mod:`ckpk.pk.parameters`).
FIT_COLUMNS = POPULATION_FIT_COLUMNS


def subject_columns(auc_column: str) -> list[str]:
    """Columns of ``pk/population_subjects.tsv`` (the AUC named after its end day)."""
    values = []
    for p in POPULATION_SUBJECT_ESTIMATES:
        name = auc_column if p.column == PARTIAL_AUC else p.column
        values += [name, f"{name}_ci95_low", f"{name}_ci95_high"]
    head = ["subject_id", "analyte", "dose_level", "dose", "converged"]
    tail = ["rhat_max", "ess_bulk_min", "ess_tail_min", "n_obs", "n_blq", "flags", "unit"]
    return head + values + tail


def _rounded(x: float, digits: int = SIGNIFICANT) -> float:
    """``x`` to ``digits`` significant digits: a posterior median from 2,000 draws is not
    known better (its Monte Carlo error is a few % of the posterior SD)."""
    if not math.isfinite(x) or x == 0:
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _summary(draws: np.ndarray) -> tuple[float, float, float]:
    low, mid, high = np.quantile(draws, [0.025, 0.5, 0.975])
    return _rounded(float(mid)), _rounded(float(low)), _rounded(float(high))


def _diagnostics(draws: np.ndarray) -> dict[str, float]:
    """R-hat to 3 decimals, ESS to whole draws."""
    diag = diagnostics(draws)
    return {
        "rhat": round(float(diag["rhat"]), 3),
        "ess_bulk": float(np.round(diag["ess_bulk"])),
        "ess_tail": float(np.round(diag["ess_tail"])),
    }


def _prior_sd(parameter: str, cmax_sd: float) -> float:
    if parameter == "cmax":
        return cmax_sd
    if parameter in PRIORS and PRIORS[parameter].scale != "half-normal":
        return PRIORS[parameter].sd
    if parameter.startswith("dose_effect") or parameter.startswith("cmax_ratio"):
        return PRIORS["dose_effect"].sd
    return _HALF_NORMAL_SD


def _site(sites: dict[str, np.ndarray], name: str, index: int | None) -> np.ndarray:
    x = sites[name]
    return x if index is None else x[..., index]


def _population_entries(data: PopulationData) -> list[tuple]:
    covariates = tuple(
        (
            name,
            "dose covariate",
            ("dose_effect", k),
            None if data.covariate.kind == "power" else np.exp,
            "unitless" if data.covariate.kind == "power" else "ratio",
        )
        for k, name in enumerate(data.covariate.names)
    )
    return [*_TYPICAL[:11], *covariates, _TYPICAL[11]]


def population_rows(
    data: PopulationData,
    sites: dict[str, np.ndarray] | None,
    divergences: int,
    context: dict[str, object],
    cmax_prior: str,
    reason: str = "",
) -> list[dict[str, object]]:
    """One row per population parameter (``context`` holds the per-fit columns); with no
    ``sites`` (no fit), every value empty and ``reason`` in ``flags``."""
    rows = []
    for parameter, kind, (site, index), transform, unit in _population_entries(data):
        label = {
            **context,
            "parameter": parameter,
            "kind": kind,
            "unit": data.unit if unit == "U" else unit,
            "prior": _prior_text(parameter, cmax_prior),
        }
        if sites is None:
            rows.append({**label, "converged": False, "flags": reason})
            continue
        draws = _site(sites, site, index)
        diag = _diagnostics(draws)
        sd_ratio = float(np.std(draws)) / _prior_sd(parameter, CMAX_PRIOR_SD)
        reported = transform(draws) if transform else draws
        estimate, low, high = _summary(reported)
        why = _why_empty(divergences, diag, sd_ratio)
        ok = not why
        rows.append(
            {
                **label,
                "estimate": estimate if ok else math.nan,
                "ci95_low": low if ok else math.nan,
                "ci95_high": high if ok else math.nan,
                "converged": ok,
                **diag,
                "flags": "; ".join([*why, *_notes(parameter, data)]),
            }
        )
    return rows


def _prior_text(parameter: str, cmax_prior: str) -> str:
    if parameter == "cmax":
        return cmax_prior
    if parameter.startswith("omega"):
        return PRIORS["omega"].describe()
    if parameter in PRIOR_TEXT:
        return PRIOR_TEXT[parameter]
    what = "exponent" if parameter == "dose_exponent" else "ln ratio"
    return f"{what} ~ N(0, 1²)"


def _notes(parameter: str, data: PopulationData) -> list[str]:
    cov = data.covariate
    if parameter == "cmax" and cov.kind == "power":
        return [f"typical Cmax at the reference dose {cov.reference} (the median dose)"]
    if parameter == "cmax" and cov.kind == "levels":
        return [f"typical Cmax at the reference dose level {cov.reference}"]
    if parameter.startswith("cmax_ratio"):
        return [f"typical Cmax of {parameter[len('cmax_ratio_') :]} / that of {cov.reference}"]
    return []


def _why_empty(divergences: int, diag: dict[str, float], sd_ratio: float) -> list[str]:
    if divergences:
        return [f"fit failed: {divergences} divergent transition(s)"]
    why = []
    if not passes(diag["rhat"], diag["ess_bulk"], diag["ess_tail"]):
        why.append(
            f"not converged: R-hat {diag['rhat']:.3f}, bulk ESS {diag['ess_bulk']:.0f}, "
            f"tail ESS {diag['ess_tail']:.0f} (needs R-hat < 1.01 and ESS ≥ 400)"
        )
    if sd_ratio >= PRIOR_DOMINATED:
        why.append(f"the data do not inform it: posterior SD {100 * sd_ratio:.0f} % of the prior's")
    return why


def _subject_prior_sd(data: PopulationData, i: int) -> dict[str, float]:
    """Prior SD of a subject's log parameter: typical value's prior, ω (E[ω²] = 1), and for
    Cmax the dose effect's prior times the covariate."""
    x = float(np.sum(data.covariate.rows[i] ** 2)) * PRIORS["dose_effect"].sd ** 2
    return {
        "cmax": math.sqrt(CMAX_PRIOR_SD**2 + 1.0 + x),
        "tmax": math.sqrt(PRIORS["tmax"].sd ** 2 + 1.0),
        "alpha": math.sqrt(PRIORS["alpha"].sd ** 2 + 1.0),
        "beta": math.sqrt(PRIORS["beta"].sd ** 2 + 1.0),
    }


def subject_rows(
    data: PopulationData, sites: dict[str, np.ndarray], divergences: int, end: float, auc_name: str
) -> list[dict[str, object]]:
    """One row per fitted subject (chains × draws of each quantity)."""
    p = individual_parameters(sites)
    areas = auc(p, end)
    shape = (CHAINS, -1)
    rows = []
    for i, subject in enumerate(data.subjects):
        draws = {
            "cmax": p.cmax[:, i],
            "tmax": p.tmax[:, i],
            "alpha": p.alpha[:, i],
            "beta": p.beta[:, i],
        }
        row, flags, worst = {}, [], [0.0, math.inf, math.inf]
        prior_sd = _subject_prior_sd(data, i)
        missing: set[str] = set()
        for name, x in [*draws.items(), (auc_name, areas[:, i])]:
            diag = _diagnostics(np.log(x).reshape(shape))
            worst = [fn(w, diag[k]) for fn, w, k in zip(_WORST, worst, _DIAG, strict=True)]
            ratio = float(np.std(np.log(x))) / prior_sd[name] if name in prior_sd else 0.0
            why = _why_empty(divergences, diag, ratio)
            if name == auc_name and missing & {"cmax", "tmax", "alpha"}:
                why = why or ["needs Cmax, Tmax and α"]
            if why:
                missing.add(name)
                flags.append(f"{name}: {why[0]}")
            row.update(_interval(name, x, not why))
        row.update(_half_lives(row))
        n_obs, n_blq = data.counts(i)
        rows.append(
            {
                "subject_id": subject,
                "analyte": data.analyte,
                "dose_level": data.dose_level[i],
                "dose": data.dose[i],
                "converged": not flags,
                **row,
                "rhat_max": worst[0],
                "ess_bulk_min": worst[1],
                "ess_tail_min": worst[2],
                "n_obs": n_obs,
                "n_blq": n_blq,
                "flags": "; ".join(flags),
                "unit": data.unit,
            }
        )
    return rows


_WORST = (max, min, min)
_DIAG = ("rhat", "ess_bulk", "ess_tail")


def _interval(name: str, x: np.ndarray, ok: bool) -> dict[str, float]:
    mid, low, high = _summary(x) if ok else (math.nan, math.nan, math.nan)
    return {name: mid, f"{name}_ci95_low": low, f"{name}_ci95_high": high}


def _half_lives(row: dict[str, float]) -> dict[str, float]:
    """ln 2 / rate: the median maps to the median, the interval's ends swap."""
    out = {}
    for rate, name in (("alpha", "contraction_half_life"), ("beta", "persistence_half_life")):
        out[name] = _rounded(_LN2 / row[rate])
        out[f"{name}_ci95_low"] = _rounded(_LN2 / row[f"{rate}_ci95_high"])
        out[f"{name}_ci95_high"] = _rounded(_LN2 / row[f"{rate}_ci95_low"])
    return out


def empty_subject_row(
    subject: str, analyte: str, level: str, dose: float, reason: str, unit: str
) -> dict[str, object]:
    """A subject the fit does not describe: every value empty, the reason in ``flags``."""
    return {
        "subject_id": subject,
        "analyte": analyte,
        "dose_level": level,
        "dose": dose,
        "converged": False,
        "flags": reason,
        "unit": unit,
    }
