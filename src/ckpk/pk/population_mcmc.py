"""Sampling the population model with NUTS, and the convergence diagnostics.

* numpyro's NUTS (Hoffman & Gelman 2014, JMLR 15:1593) on JAX's CPU backend, 4 chains of
  :data:`WARMUP` adaptation and :data:`DRAWS` kept draws each, one fixed seed: the same
  inputs give the same draws, hence the same tables. The chains run side by side on 4
  virtual CPU devices (set before JAX starts, :func:`_ask_for_devices`), which uses both
  cores of a small machine and compiles the sampler once.
* ``target_accept_prob`` 0.95 instead of 0.8: the curve has a corner at Tmax, and the
  smaller steps keep NUTS from diverging where a trajectory crosses it (on a simulated
  sparse trial of 30 subjects, 0.9 and 0.8 gave divergent transitions where 0.95 gave
  none; benchmarks/README.md, "Population fit").
* Each subject's Cmax and Tmax are sampled *centred* (the subject's own value, prior
  N(typical, ω)) when its readings frame the peak (:func:`centred_parameters`), else
  *non-centred* (η ~ N(0, 1)); α, β and Fb always non-centred (centring α too gave
  more divergent fits on small simulated trials). Centred sampling suits
  parameters the subject's own data pin down, non-centred ones the population informs
  most (Papaspiliopoulos, Roberts & Sköld 2007, Statistical Science 22:59); mixing them
  per subject keeps a rich profile and a sparse one both easy to sample.
* Diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021 (Bayesian Analysis
  16:667): rank-normalised split R-hat (the larger of bulk and folded), bulk and tail
  effective sample sizes; a quantity passes with R-hat < :data:`RHAT_MAX` and both ESS ≥
  :data:`ESS_MIN` (their recommendation for 4 chains). A fit passes with no divergent
  transition.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.special import ndtri

from ckpk.pk.population_data import PopulationData

CHAINS = 4
WARMUP = 500
DRAWS = 1000
TARGET_ACCEPT = 0.95
DEFAULT_SEED = 2019
RHAT_MAX = 1.01
ESS_MIN = 400.0
#: A subject's peak is framed by its readings (centred sampling) with at least this many
#: quantifiable readings, one before the highest and one within this many days after it.
FRAMED_MIN_READINGS = 3
FRAMED_AFTER_DAYS = 14.0


def _ask_for_devices() -> None:
    """One virtual CPU device per chain; XLA reads this only when JAX starts."""
    if "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={CHAINS}"


# At import, so that the diagnostics (numpyro.diagnostics imports JAX) cannot start JAX
# with one device before the sampler asks for four.
_ask_for_devices()


@dataclass(frozen=True)
class Samples:
    """Draws by chain (chains × draws × ...) of every sampled site, and the sampler's log."""

    sites: dict[str, np.ndarray]
    divergences: int
    mean_steps: float
    chain_method: str


def centred_parameters(data: PopulationData) -> np.ndarray:
    """subjects × 5 booleans: which entries of (Cmax, Tmax, α, β, Fb) are sampled centred
    (Cmax and Tmax of the subjects whose readings frame their peak)."""
    centred = np.zeros((data.n_subjects, 5), dtype=bool)
    for i in range(data.n_subjects):
        mine = (data.subject_index == i) & ~data.censored
        days, values = data.day[mine], data.log_value[mine]
        peak_day = days[np.argmax(values)]
        before = np.any(days < peak_day)
        after = np.any((days > peak_day) & (days <= peak_day + FRAMED_AFTER_DAYS))
        centred[i, :2] = days.size >= FRAMED_MIN_READINGS and before and after
    return centred


def _init_strategy(site: dict | None = None):
    """Chains start apart: every subject effect uniform in ±0.5 around its anchor (a
    different draw per chain), the population parameters at the median of 15 prior draws."""
    import jax
    from numpyro.infer import init_to_median

    if site["name"] == "raw":
        shape = site["fn"].shape()
        return jax.random.uniform(site["kwargs"]["rng_key"], shape, minval=-0.5, maxval=0.5)
    return init_to_median(site)


def sample_posterior(data: PopulationData, cmax_centre: float, seed: int = DEFAULT_SEED) -> Samples:
    """Run the 4 chains on ``data``; ``cmax_centre`` is the centre of Cmax's prior (log)."""
    _ask_for_devices()
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    from ckpk.pk.population_model import population_model
    from ckpk.pk.population_priors import PRIORS

    method = "parallel" if jax.local_device_count() >= CHAINS else "sequential"
    anchors = [cmax_centre] + [PRIORS[name].centre for name in ("tmax", "alpha", "beta", "fb")]
    arguments = {
        "subject": jnp.asarray(data.subject_index, dtype=jnp.int32),
        "t": jnp.asarray(data.day, dtype=jnp.float32),
        "y": jnp.asarray(data.log_value, dtype=jnp.float32),
        "censored": jnp.asarray(data.censored),
        "covariates": jnp.asarray(data.covariate.rows, dtype=jnp.float32),
        "cmax_centre": jnp.float32(cmax_centre),
        "centred": jnp.asarray(centred_parameters(data)),
        "anchors": jnp.asarray(anchors, dtype=jnp.float32),
    }
    kernel = NUTS(
        population_model,
        init_strategy=partial(_init_strategy),
        target_accept_prob=TARGET_ACCEPT,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=WARMUP,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method=method,
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), **arguments, extra_fields=("diverging", "num_steps"))
    sites = {
        k: np.asarray(v, dtype=float) for k, v in mcmc.get_samples(group_by_chain=True).items()
    }
    extra = mcmc.get_extra_fields(group_by_chain=True)
    return Samples(
        sites=sites,
        divergences=int(np.asarray(extra["diverging"]).sum()),
        mean_steps=float(np.asarray(extra["num_steps"]).mean()),
        chain_method=method,
    )


def _split(x: np.ndarray) -> np.ndarray:
    """chains × draws × ... → 2·chains × draws/2 × ... (each chain cut in halves)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, half : 2 * half]], axis=0)


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of all draws together (ties averaged), per quantity."""
    from scipy.stats import rankdata

    flat = x.reshape(-1, *x.shape[2:])
    ranks = rankdata(flat, axis=0, method="average")
    return ndtri((ranks - 0.375) / (flat.shape[0] + 0.25)).reshape(x.shape)


def _rhat(z: np.ndarray) -> np.ndarray:
    n = z.shape[1]
    within = z.var(axis=1, ddof=1).mean(axis=0)
    between = n * z.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(((n - 1) / n * within + between / n) / within)


def _ess(z: np.ndarray) -> np.ndarray:
    from numpyro.diagnostics import effective_sample_size

    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(effective_sample_size(z), dtype=float)


def diagnostics(x: np.ndarray) -> dict[str, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of draws ``x`` (chains × draws × ...), per quantity."""
    split = _split(np.asarray(x, dtype=float))
    bulk = _rank_normalise(split)
    folded = _rank_normalise(np.abs(split - np.median(split, axis=(0, 1))))
    rhat = np.fmax(_rhat(bulk), _rhat(folded))
    q05, q95 = np.quantile(split, [0.05, 0.95], axis=(0, 1))
    tail = np.fmin(_ess((split <= q05).astype(float)), _ess((split >= q95).astype(float)))
    return {"rhat": rhat, "ess_bulk": _ess(bulk), "ess_tail": tail}


def passes(rhat: float, ess_bulk: float, ess_tail: float) -> bool:
    """Whether a quantity's chains agree and its draws are enough (module doc)."""
    return bool(rhat < RHAT_MAX and ess_bulk >= ESS_MIN and ess_tail >= ESS_MIN)
