"""The priors of the population model (docs/rules.md, "Population kinetics").

Written once here and read by the model (:mod:`ckpk.pk.population_model`), the tables'
``prior`` column and the docs. Plain Python: importing it does not start JAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ckpk.pk.kinetics import TYPICAL


@dataclass(frozen=True)
class Prior:
    """A normal prior on a transformed parameter (``scale``: log, logit or half-normal)."""

    centre: float  # on the transformed scale (0 for half-normal priors)
    sd: float
    scale: str
    source: str

    def describe(self) -> str:
        if self.scale == "half-normal":
            return f"half-normal({self.sd:g})"
        natural = math.exp(self.centre) if self.scale == "log" else 1 / (1 + math.exp(-self.centre))
        what = "ln" if self.scale == "log" else "logit"
        return f"{what} ~ N({what} {natural:.3g}, {self.sd:g}²)"


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


_STEIN = "Stein 2019 Table 1"
_OMEGA = "Gelman 2006; Stein 2019 Table 1 random effects 0.38-2.4"
#: Priors of the population parameters. Widths: the typical values may lie a factor
#: e^(1.96·sd) either side of the published value (Tmax ×/÷ 2.7, α, β ×/÷ 7, foldx
#: ×/÷ 50, Fb's odds ×/÷ 19) — the spread of CAR T products and assays, not of one trial;
#: Cmax's centre is set per fit (:func:`cmax_prior`). Between-subject SDs and σ:
#: half-normal(1), a weakly informative scale prior (Gelman 2006, Bayesian Analysis
#: 1:515) whose median 0.67 and 95th percentile 1.96 enclose Stein's estimates.
PRIORS: dict[str, Prior] = {
    "tmax": Prior(math.log(TYPICAL.tmax), 0.5, "log", _STEIN),
    "foldx": Prior(math.log(TYPICAL.foldx), 2.0, "log", _STEIN),
    "alpha": Prior(math.log(TYPICAL.alpha), 1.0, "log", _STEIN),
    "beta": Prior(math.log(TYPICAL.beta), 1.0, "log", _STEIN),
    "fb": Prior(_logit(TYPICAL.fb), 1.5, "logit", _STEIN),
    "omega": Prior(0.0, 1.0, "half-normal", _OMEGA),
    "sigma": Prior(0.0, 1.0, "half-normal", "Gelman 2006; Stein 2019 residual 0.56"),
    "dose_effect": Prior(0.0, 1.0, "normal", "sceptical: no dose effect ± 1"),
}
#: Cmax's prior width on the log scale: ×/÷ 10 at one SD, so that the centre (the
#: published value or the observed peaks, :func:`cmax_prior`) barely matters.
CMAX_PRIOR_SD = math.log(10.0)
#: The analyte whose unit is the published one (transgene copies/µg genomic DNA).
PUBLISHED_CMAX_ANALYTE = "car_copies_per_ug"


def cmax_prior(analyte: str, median_peak: float) -> Prior:
    """Cmax's prior: centred on the published 24,000 copies/µg for the qPCR analyte, on the
    median observed peak for the others (cells/µL and % of CD3+ have no published value)."""
    if analyte == PUBLISHED_CMAX_ANALYTE:
        return Prior(math.log(TYPICAL.cmax), CMAX_PRIOR_SD, "log", "Stein 2019 Table 1")
    centre = math.log(median_peak) if median_peak > 0 else 0.0
    return Prior(centre, CMAX_PRIOR_SD, "log", "median observed peak (no published value)")
