"""The hierarchical Stein 2019 model in numpyro (docs/rules.md, "Population kinetics").

Subject i's curve is :func:`ckpk.pk.kinetics.stein_curve` with

    log Cmax_i  = log Cmax_pop + x_i · θ_dose + ω_Cmax · η_Cmax,i
    log Tmax_i  = log Tmax_pop + ω_Tmax · η_Tmax,i
    log α_i     = log α_pop    + ω_α · η_α,i
    log β_i     = log β_pop    + ω_β · η_β,i
    logit Fb_i  = logit Fb_pop + ω_Fb · η_Fb,i          η ~ N(0, 1)
    foldx_i     = foldx_pop

x_i is the dose covariate row (:mod:`ckpk.pk.population_data`): ln(dose_i / reference
dose) for a power model, indicators of the dose levels other than the reference level
when only levels are known, nothing for a single dose. The between-subject effects are
non-centred (η standard normal, scaled by ω), the parameterisation that samples well when
sparse subjects tell little about their own effect (Betancourt & Girolami 2015, Current
Trends in Bayesian Methodology with Applications, ch. 4), except the Cmax and Tmax of
subjects whose readings frame their peak, which are centred
(:func:`ckpk.pk.population_mcmc.centred_parameters`).

Readings: log y = log C(t) + ε, ε ~ N(0, σ²); a BLQ reading adds log Φ((log LLOQ − log
C(t)) / σ) (Beal's M3), as in the individual fit (:mod:`ckpk.pk.likelihood`).

The priors are in :mod:`ckpk.pk.population_priors`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ckpk.pk.population_priors import CMAX_PRIOR_SD, PRIORS, Prior

if TYPE_CHECKING:
    import jax.numpy as jnp

#: Parameters with between-subject variability, in the order of the η columns.
BSV_PARAMETERS = ("cmax", "tmax", "alpha", "beta", "fb")


def log_curve(
    t: jnp.ndarray,
    log_cmax: jnp.ndarray,
    log_tmax: jnp.ndarray,
    log_foldx: jnp.ndarray,
    log_alpha: jnp.ndarray,
    log_beta: jnp.ndarray,
    logit_fb: jnp.ndarray,
) -> jnp.ndarray:
    """log C(t) of the Stein curve, elementwise (every argument broadcast with ``t``)."""
    import jax.numpy as jnp

    tmax = jnp.exp(log_tmax)
    rising = log_cmax + log_foldx * (t / tmax - 1.0)
    delta = jnp.maximum(t - tmax, 0.0)
    # log(1 - Fb) and log Fb from the logit, stable for Fb near 0 or 1.
    log_fb = -jnp.logaddexp(0.0, -logit_fb)
    log_1m_fb = -jnp.logaddexp(0.0, logit_fb)
    falling = log_cmax + jnp.logaddexp(
        log_1m_fb - jnp.exp(log_alpha) * delta, log_fb - jnp.exp(log_beta) * delta
    )
    return jnp.where(t < tmax, rising, falling)


def _normal(name: str, prior: Prior, shape: tuple[int, ...] = ()) -> jnp.ndarray:
    import numpyro
    import numpyro.distributions as dist

    d = dist.Normal(prior.centre, prior.sd)
    return numpyro.sample(name, d.expand(shape) if shape else d)


def population_model(
    subject: jnp.ndarray,
    t: jnp.ndarray,
    y: jnp.ndarray,
    censored: jnp.ndarray,
    covariates: jnp.ndarray,
    cmax_centre: jnp.ndarray,
    centred: jnp.ndarray,
    anchors: jnp.ndarray,
) -> None:
    """The numpyro model. One entry per observation: ``subject`` index, day ``t``, ``y`` the
    log reading (or log LLOQ where ``censored``); one row per subject: ``covariates`` and
    ``centred`` (subjects × 5, which parameters are sampled centred,
    :func:`ckpk.pk.population_mcmc.centred_parameters`); ``anchors`` (5) shift the centred
    ones so that 0 means the prior centre. Site ``individual`` records every subject's
    log Cmax, log Tmax, log α, log β and logit Fb."""
    # JAX is imported here, not with the module, so that the sampler can ask for its CPU
    # devices before JAX starts (ckpk.pk.population_mcmc).
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.special import log_ndtr
    from numpyro.distributions import constraints

    n_subjects, n_covariates = covariates.shape
    typical = jnp.stack(
        [
            _normal("log_cmax", Prior(cmax_centre, CMAX_PRIOR_SD, "log", "")),
            _normal("log_tmax", PRIORS["tmax"]),
            _normal("log_alpha", PRIORS["alpha"]),
            _normal("log_beta", PRIORS["beta"]),
            _normal("logit_fb", PRIORS["fb"]),
        ]
    )
    log_foldx = _normal("log_foldx", PRIORS["foldx"])
    omega = numpyro.sample("omega", dist.HalfNormal(PRIORS["omega"].sd).expand([5]))
    sigma = numpyro.sample("sigma", dist.HalfNormal(PRIORS["sigma"].sd))
    mean = jnp.broadcast_to(typical, (n_subjects, 5))
    if n_covariates:
        effect = _normal("dose_effect", PRIORS["dose_effect"], (n_covariates,))
        mean = mean.at[:, 0].add(covariates @ effect)
    # One unconstrained value per subject and parameter, whose prior is added below: a
    # centred entry is the subject's parameter (anchor + raw) with prior N(mean, ω), a
    # non-centred one is η ~ N(0, 1) and the parameter mean + ω η.
    raw = numpyro.sample("raw", dist.ImproperUniform(constraints.real, (), (n_subjects, 5)))
    own = anchors[None, :] + raw
    individual = jnp.where(centred, own, mean + omega * raw)
    log_prior = jnp.where(
        centred, dist.Normal(mean, omega).log_prob(own), dist.Normal(0.0, 1.0).log_prob(raw)
    )
    numpyro.factor("between_subjects", jnp.sum(log_prior))
    numpyro.deterministic("individual", individual)
    at = individual[subject]
    mu = log_curve(t, at[:, 0], at[:, 1], log_foldx, at[:, 2], at[:, 3], at[:, 4])
    z = (y - mu) / sigma
    quantified = -0.5 * z * z - jnp.log(sigma) - 0.5 * math.log(2.0 * math.pi)
    numpyro.factor("readings", jnp.sum(jnp.where(censored, log_ndtr(z), quantified)))
