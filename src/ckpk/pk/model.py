"""Fit of the Stein 2019 expansion / contraction / persistence model.

The rule is in docs/rules.md, "Kinetic model".

Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol.
2019;8:285-295. The curve itself lives in :mod:`ckpk.pk.kinetics` (shared with the
simulator); this module estimates its parameters for one subject × analyte at a time
(:func:`fit_profile`) or for a whole concentrations table (:func:`fit_table`). The steps
have a module each:

* :mod:`ckpk.pk.likelihood`: log-normal residual error on the log scale, BLQ samples
  left-censored at their LLOQ (Beal's M3), screening days left out, the transformed
  parameters ``log Cmax, log Tmax, log(foldx − 1), log α, logit(β/α), logit Fb, log σ``;
* :mod:`ckpk.pk.fitting`: deterministic multi-start bounded search, the likelihood
  corner at Tmax on a sampling day, and the model choice: the *full* model (6 curve
  parameters + σ) against a *reduced* one with ``Fb = 0`` (4 + σ), the smaller AICc
  winning (``model`` column; a tie keeps the reduced one), each tried only with n ≥ k + 2
  observations and the full one only with quantifiable samples in the persistence
  phase. When the reduced model wins, ``fb`` is 0 and ``beta``/``persistence_half_life``
  are empty: the data (short follow-up, or a tail below the LLOQ) do not support a second
  phase;
* :mod:`ckpk.pk.standard_errors`: the ``*_se`` columns (observed information, delta
  method, degrees-of-freedom correction);
* :mod:`ckpk.pk.parameters`: the columns of ``pk/model_fits.tsv``.

Honest numbers: nothing the data cannot tell is reported
-------------------------------------------------------
No fit at all (``converged`` false, every value empty, the reason in ``flags``): no
quantifiable observation (non-responder); fewer than :data:`MIN_QUANTIFIABLE`
quantifiable observations; fewer than k + 2 observations for the simplest model; no
observation before the observed peak; no decline after it (this covers flat profiles);
a search that ends neither at a stationary point nor at an accepted corner.

A fitted model reports only what the data determine. A parameter is left empty, with
the reason in ``flags``, when (:func:`_not_estimable`):

* only BLQ samples precede the first quantifiable one: the rise is unseen, so Cmax,
  Tmax and foldx lie on a ridge of the likelihood (any earlier, higher peak with a larger
  expansion fits as well; a BLQ sample at its LLOQ is not "a rise");
* it sits on a bound of the search;
* the information matrix is singular or nearly so along it
  (:func:`ckpk.pk.standard_errors.unidentified`).

Derived quantities follow their inputs (:data:`DEPENDS_ON`): ρ and the doubling time need
foldx and Tmax, the half-lives α and β, the model AUC every curve parameter but β (whose
effect over four weeks is a few % at most). ``converged``
true therefore means: the optimiser converged, and every value reported is estimable.

Quality flags (``converged`` stays true; the flags tell the analyst what to distrust):
model Cmax above 3 × the highest reading (peak between samples); residual SD above 1
on the log scale (outliers, re-expansion or another shape the model cannot follow);
any reported estimate whose SE exceeds 50 % of it; estimates on a bound; Tmax on a
sampling day (reported without ``tmax_se``, a corner has no curvature).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ckpk.cells import boolean
from ckpk.pk.concentrations import ANALYTE_UNITS, validate_concentrations
from ckpk.pk.fitting import (
    FULL_MODEL_MIN_OBS,
    REDUCED_MODEL_MIN_OBS,
    SIGMA_BOUNDS,
    Fit,
    bound_text,
    choose_model,
)
from ckpk.pk.kinetics import SteinParameters, stein_auc
from ckpk.pk.likelihood import (
    BLQ_HANDLING,
    IDX_REDUCED,
    ProfileData,
    estimates,
    prepare_observations,
    to_parameters,
)
from ckpk.pk.parameter_tables import column_help
from ckpk.pk.parameters import (
    DEFAULT_PARTIAL_AUC_END,
    MODEL_PARAMETERS,
    empty_row,
    estimate_names,
    format_day,
    model_fit_columns,
    partial_auc_column,
    result_columns,
)
from ckpk.pk.standard_errors import free_hessian_of, ridge_quantities, standard_errors

__all__ = [
    "BLQ_HANDLING",
    "FULL_MODEL_MIN_OBS",
    "MAX_CMAX_RATIO",
    "MAX_RELATIVE_SE",
    "MIN_QUANTIFIABLE",
    "MODEL_COLUMN_DOC",
    "MODEL_FIT_COLUMNS",
    "POOR_FIT_SIGMA",
    "SIGMA_BOUNDS",
    "fit_profile",
    "fit_table",
    "parameters_from_row",
]

#: Fewest quantifiable (non-BLQ) observations a profile needs to be fitted.
MIN_QUANTIFIABLE = 4
#: Quality flags on converged fits (they do not change ``converged``): model Cmax more
#: than this multiple of the highest reading, residual SD above this on the log scale,
#: and standard errors above this fraction of their estimate.
MAX_CMAX_RATIO = 3.0
POOR_FIT_SIGMA = 1.0
MAX_RELATIVE_SE = 0.5

#: ``pk/model_fits.tsv`` columns for the default AUC end (``model_fit_columns(end)``).
MODEL_FIT_COLUMNS: list[str] = model_fit_columns()
MODEL_COLUMN_DOC: dict[str, str] = column_help(MODEL_PARAMETERS)

#: Transformed parameter → the reported estimate it is (from the registry).
REPORTED = {p.theta: p.column for p in MODEL_PARAMETERS if p.theta}
#: Quantities that transform one estimate, empty whenever it is (from the registry).
SAME_AS = {p.column: p.same_as for p in MODEL_PARAMETERS if p.same_as}
#: Quantities computed from several estimates ("{end}" in the partial-AUC column), empty
#: when one they need sits on a bound or is hidden by an unseen rise. (Along a ridge of
#: the likelihood each quantity is judged by how much the ridge moves it, see
#: :func:`ckpk.pk.standard_errors.ridge_quantities`.)
DEPENDS_ON = {p.column: p.needs for p in MODEL_PARAMETERS if p.needs}
RIDGE = "the likelihood is flat along it"


def _identifiability(data: ProfileData) -> list[str]:
    """Reasons why this profile cannot be fitted (empty when it can)."""
    n_q = data.t_q.size
    if data.n == 0:
        return ["no observation on or after day 0"]
    if n_q == 0:
        return [f"no quantifiable observation (all {data.t_c.size} BLQ): non-responder"]
    reasons = []
    if n_q < MIN_QUANTIFIABLE:
        reasons.append(
            f"too few quantifiable observations ({n_q} < {MIN_QUANTIFIABLE}) to fit the model"
        )
    elif data.n < REDUCED_MODEL_MIN_OBS:
        reasons.append(
            f"too few observations ({data.n} < {REDUCED_MODEL_MIN_OBS}: the simplest model has "
            f"{IDX_REDUCED.size} parameters and needs 2 observations more)"
        )
    peak = float(np.max(data.y_q))
    t_peak = float(data.t_q[np.argmax(data.y_q)])  # first day of the maximum
    t, y, _ = data.in_day_order()
    if not np.any(t < t_peak):
        reasons.append("no rise observed before the peak (no observation before it)")
    if not np.any((t > t_peak) & (y < peak)):
        reasons.append("no decline observed after the peak (contraction not identifiable)")
    return reasons


def _empty_result(flags: list[str], n_obs: int, n_blq: int, end: float) -> dict[str, object]:
    names = result_columns(MODEL_PARAMETERS, end)
    return empty_row(
        names, converged=False, flags="; ".join(flags), n_obs=n_obs, n_blq=n_blq, model=""
    )


def _observations(
    day: Sequence[float] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    blq: Sequence[bool] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float days and values (text that is not a number → NaN), bool BLQ, per-row LLOQ."""
    day_a = np.asarray(day, dtype=float)
    value_a = np.asarray(
        pd.to_numeric(pd.Series(np.asarray(value, dtype=object)), errors="coerce"), dtype=float
    )
    blq_a = np.asarray(blq, dtype=bool)
    if lloq is None:
        lloq_a = np.full(day_a.size, np.nan)
    else:
        lloq_a = np.broadcast_to(np.asarray(lloq, dtype=float), day_a.shape).copy()
    return day_a, value_a, blq_a, lloq_a


def fit_profile(
    day: Sequence[float] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    blq: Sequence[bool] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None = None,
    *,
    end: float = DEFAULT_PARTIAL_AUC_END,
    blq_handling: str = "censored",
    reduced: str = "aic",
) -> dict[str, object]:
    """Fit the Stein 2019 model to one subject × analyte profile.

    ``day``, ``value``, ``blq`` (and ``lloq``, a scalar or one value per observation)
    describe the samples; on a BLQ row ``value`` is ignored (empty, 0 or a reading below
    the LLOQ all mean the same). ``blq_handling`` is one of :data:`BLQ_HANDLING`
    (``censored`` is the rule of docs/rules.md; the others exist to show their bias). ``reduced``:
    ``"aic"`` picks the full or reduced (fb = 0) model by AIC, ``"never"`` forces the full
    model, ``"always"`` the reduced one. The model AUC runs over [0, ``end``] and is
    named after it (``auc_0_28``).

    Returns a dict with the keys of ``model_fit_columns(end)`` except subject_id,
    analyte and unit. Never raises on bad data: ``converged`` is false and ``flags``
    says why.
    """
    if blq_handling not in BLQ_HANDLING:
        raise ValueError(f"blq_handling must be one of {BLQ_HANDLING}, not {blq_handling!r}")
    if reduced not in ("aic", "never", "always"):
        raise ValueError(f"reduced must be 'aic', 'never' or 'always', not {reduced!r}")
    day_a, value_a, blq_a, lloq_a = _observations(day, value, blq, lloq)
    if not (day_a.size == value_a.size == blq_a.size == lloq_a.size):
        return _empty_result(["day, value, blq and lloq differ in length"], 0, 0, end)

    censored_view, data, flags = prepare_observations(day_a, value_a, blq_a, lloq_a, blq_handling)
    n_obs, n_blq = censored_view.n, int(censored_view.t_c.size)
    reasons = _identifiability(censored_view)
    if reasons:
        return _empty_result(reasons + flags, n_obs, n_blq, end)
    fit = choose_model(data, reduced, flags)
    result = _result(fit, data, censored_view, flags, end)
    result.update(n_obs=n_obs, n_blq=n_blq)
    return result


def _fit_flags(fit: Fit, data: ProfileData, p: SteinParameters) -> list[str]:
    """What the search itself says: no convergence; estimates on a bound (only when it did
    not converge: otherwise they are reported as not estimable)."""
    flags = []
    if not fit.success:
        flags.append(f"optimizer did not converge: {fit.message}")
        if fit.at_bound:
            flags.append("estimate at its bound: " + ", ".join(bound_text(fit, data)))
    return flags


def _not_estimable(
    fit: Fit, data: ProfileData, censored_view: ProfileData, ridge: list[str], end: float
) -> dict[str, str]:
    """Reported estimate → why the data cannot determine it (see the module doc)."""
    out: dict[str, str] = {}
    t_peak = float(censored_view.t_q[np.argmax(censored_view.y_q)])
    if not np.any(censored_view.t_q < t_peak):
        why = f"only BLQ samples before day {t_peak:g}: the rise is not seen"
        for name in ("cmax", "tmax", "foldx"):
            out[name] = why
    bounds = dict(zip(fit.at_bound, bound_text(fit, data), strict=True))
    for theta_name, text in bounds.items():
        out.setdefault(REPORTED[theta_name], text)
    for name in ridge:
        out.setdefault(name, RIDGE)
    if not fit.full:
        out.pop("beta", None), out.pop("fb", None)  # fixed by the reduced model, not estimated
    return out


def _blank(result: dict[str, object], missing: dict[str, str], end: float) -> list[str]:
    """Empty what cannot be estimated and what follows from it; the flags saying so."""
    follows = []
    for derived, needs in DEPENDS_ON.items():
        name = derived.replace("{end}", format_day(end))
        lost = [n for n in needs if n in missing and missing[n] != RIDGE]
        if lost and name not in missing:
            follows.append(name)
    for derived, source in SAME_AS.items():
        if (source in missing or source in follows) and derived not in missing:
            follows.append(derived)
    for name in [*missing, *follows]:
        result[name] = np.nan
        if f"{name}_se" in result:
            result[f"{name}_se"] = np.nan
    if not missing:
        return []
    by_reason: dict[str, list[str]] = {}
    for name, why in missing.items():
        by_reason.setdefault(why, []).append(name)
    flags = [f"not estimable: {', '.join(names)} ({why})" for why, names in by_reason.items()]
    if follows:
        flags.append(f"empty as they need those: {', '.join(follows)}")
    return flags


def _result(
    fit: Fit, data: ProfileData, censored_view: ProfileData, flags: list[str], end: float
) -> dict[str, object]:
    """The ``model_fits`` values of a fitted model, its SEs and every flag."""
    p = to_parameters(fit.theta, fit.full)
    sigma = math.exp(fit.theta[6])
    if data.n > fit.k:
        # Reported like R's nls "residual standard error": the ML estimate divides by n,
        # this by the n - k degrees of freedom left after k parameters.
        sigma *= math.sqrt(data.n / (data.n - fit.k))
    flags = flags + _fit_flags(fit, data, p)
    if not fit.success:
        # A search that merely stopped supports none of its numbers.
        return {**_empty_result(flags, 0, 0, end), "model": "full" if fit.full else "reduced"}
    hessian = free_hessian_of(fit, data)
    se, se_flag = standard_errors(fit, data, end, hessian)
    ridge = ridge_quantities(fit, data, end, hessian)
    missing = _not_estimable(fit, data, censored_view, ridge, end)
    if se_flag:
        flags.append(se_flag)
    if fit.corner and "tmax" not in missing:
        flags.append(
            f"Tmax falls on the sampling day {p.tmax:g} (likelihood corner): no tmax_se, "
            "other SEs treat Tmax as known"
        )
    result: dict[str, object] = {
        "converged": True,
        "cmax": p.cmax,
        "tmax": p.tmax,
        "rho": p.rho,
        "doubling_time": p.doubling_time,
        "alpha": p.alpha,
        "beta": p.beta if fit.full else np.nan,
        "fb": p.fb,
        partial_auc_column(end): stein_auc(p, 0.0, end),
        "aic": fit.aic,
        "aicc": fit.aicc,
        "foldx": p.foldx,
        "sigma": sigma,
        "contraction_half_life": p.contraction_half_life,
        "persistence_half_life": p.persistence_half_life if fit.full else np.nan,
        "model": "full" if fit.full else "reduced",
    }
    for name, value_se in zip(estimate_names(end), se, strict=True):
        fixed = not fit.full and name in ("beta", "fb")
        fixed |= fit.corner and name == "tmax"
        result[f"{name}_se"] = np.nan if fixed else float(value_se)
    if "sigma" in missing:
        # Residual SD on its floor: the model passes through the data and no residual
        # variation is left to measure uncertainty with.
        for name in estimate_names(end):
            result[f"{name}_se"] = np.nan
    flags.extend(_blank(result, missing, end))
    flags.extend(_quality_flags(p, sigma, fit, censored_view, se, end, missing))
    result["flags"] = "; ".join(flags)
    return result


def _quality_flags(
    p: SteinParameters,
    sigma: float,
    fit: Fit,
    data: ProfileData,
    se: np.ndarray,
    end: float,
    missing: Mapping[str, str],
) -> list[str]:
    """Warnings a PK analyst needs before trusting a converged fit (on reported values)."""
    flags = []
    observed_peak = math.exp(float(np.max(data.y_q)))
    if "cmax" not in missing and p.cmax > MAX_CMAX_RATIO * observed_peak:
        flags.append(
            f"model Cmax is {p.cmax / observed_peak:.1f} x the highest reading: the peak "
            "falls between samples and is poorly determined"
        )
    if sigma > POOR_FIT_SIGMA:
        flags.append(
            f"poor fit: residual SD {sigma:.2f} on the log scale (> {POOR_FIT_SIGMA:g}); "
            "check for outliers or a profile the model cannot describe (e.g. re-expansion)"
        )
    values = estimates(fit.theta, fit.full, end)
    vague = [
        name
        for name, value, value_se in zip(estimate_names(end), values, se, strict=True)
        if (fit.full or name not in ("beta", "fb"))
        and name not in missing
        and math.isfinite(value_se)
        and value_se > MAX_RELATIVE_SE * abs(value)
    ]
    if vague:
        flags.append(
            f"poorly determined (SE > {MAX_RELATIVE_SE:.0%} of the estimate): " + ", ".join(vague)
        )
    return flags


def parameters_from_row(row: Mapping[str, object] | pd.Series) -> SteinParameters | None:
    """The fitted curve of one ``model_fits`` row, or None when it has no usable fit."""
    try:
        if not boolean(row.get("converged")):
            return None
        values = {k: float(row.get(k)) for k in ("cmax", "tmax", "foldx", "alpha", "fb")}
        beta = float(row.get("beta")) if row.get("beta") is not None else math.nan
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in values.values()):
        return None
    if not math.isfinite(beta):
        if values["fb"] != 0:
            return None
        beta = values["alpha"]
    return SteinParameters(beta=beta, **values)


def fit_table(
    concentrations: pd.DataFrame,
    lloq: Mapping[str, float] | None = None,
    end: float = DEFAULT_PARTIAL_AUC_END,
) -> pd.DataFrame:
    """Fit every subject × analyte of a concentrations table (``pk/model_fits.tsv``).

    BLQ rows take their LLOQ from the table's ``lloq`` column, or from ``lloq[analyte]``
    where that cell is empty; a BLQ row with neither is left out with a flag. Returns the
    columns of ``model_fit_columns(end)``, sorted by subject and analyte. One profile's
    failure never stops the others (``converged`` false with a reason).
    """
    table = validate_concentrations(concentrations)
    lloq = dict(lloq or {})
    rows = []
    for (subject, analyte), group in table.groupby(["subject_id", "analyte"], sort=True):
        group = group.sort_values("day", kind="mergesort")
        row_lloq = group["lloq"].to_numpy(dtype=float).copy()
        default = lloq.get(str(analyte), np.nan)
        row_lloq[~(np.isfinite(row_lloq) & (row_lloq > 0))] = default
        units = group["unit"].dropna().astype(str)
        units = units[units.str.strip() != ""]
        unit = units.iloc[0] if len(units) else ANALYTE_UNITS.get(str(analyte), "")
        try:
            result = fit_profile(group["day"], group["value"], group["blq"], row_lloq, end=end)
        except Exception as exc:  # noqa: BLE001 - one bad profile must not stop the table
            failed = [f"fit failed: {type(exc).__name__}: {exc}"]
            result = _empty_result(failed, len(group), 0, end)
        rows.append({"subject_id": subject, "analyte": analyte, **result, "unit": unit})
    columns = model_fit_columns(end)
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows)[columns].reset_index(drop=True)
