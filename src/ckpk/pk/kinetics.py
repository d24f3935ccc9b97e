"""The piecewise CAR T cellular-kinetic model of Stein et al. 2019.

Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol.
2019;8:285-295. (docs/rules.md)

    t <  Tmax:  C(t) = (Cmax / foldx) · exp(rho · t),   rho = ln(foldx) / Tmax
    t >= Tmax:  C(t) = Cmax · [(1 − Fb) · exp(−alpha (t − Tmax)) + Fb · exp(−beta (t − Tmax))]

The curve is shared by the simulator (which draws subjects from it) and the model fit
(which estimates its parameters), so both speak of the same parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SteinParameters:
    """One subject's kinetic parameters, in the paper's names and units.

    cmax: peak level (analyte unit); tmax: day of the peak; foldx: fold expansion from
    day 0 to the peak; alpha, beta: contraction and persistence rate constants (1/day);
    fb: fraction of the peak that persists (0-1).
    """

    cmax: float
    tmax: float
    foldx: float
    alpha: float
    beta: float
    fb: float

    @property
    def rho(self) -> float:
        """Expansion rate constant (1/day)."""
        return math.log(self.foldx) / self.tmax

    @property
    def doubling_time(self) -> float:
        """Expansion doubling time ln2/rho (days)."""
        return math.log(2.0) / self.rho

    @property
    def contraction_half_life(self) -> float:
        """ln2/alpha (days)."""
        return math.log(2.0) / self.alpha

    @property
    def persistence_half_life(self) -> float:
        """ln2/beta (days)."""
        return math.log(2.0) / self.beta

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# Published typical values (Stein 2019, tisagenlecleucel in pediatric ALL, qPCR
# transgene copies/µg genomic DNA).
TYPICAL = SteinParameters(cmax=24000.0, tmax=9.3, foldx=3900.0, alpha=0.16, beta=0.0032, fb=0.0079)


def stein_curve(t: np.ndarray | float, p: SteinParameters) -> np.ndarray:
    """Model level at days ``t`` (day 0 = infusion); 0 before the infusion."""
    t = np.asarray(t, dtype=float)
    rho = p.rho
    rising = (p.cmax / p.foldx) * np.exp(rho * np.minimum(t, p.tmax))
    dt = np.maximum(t - p.tmax, 0.0)
    falling = p.cmax * ((1.0 - p.fb) * np.exp(-p.alpha * dt) + p.fb * np.exp(-p.beta * dt))
    level = np.where(t < p.tmax, rising, falling)
    return np.where(t < 0, 0.0, level)


def stein_auc(p: SteinParameters, start: float, end: float) -> float:
    """Exact integral of :func:`stein_curve` over [start, end] (start >= 0)."""
    if end <= start:
        return 0.0
    total = 0.0
    a, b = max(start, 0.0), min(end, p.tmax)
    if b > a:
        c0 = p.cmax / p.foldx
        total += c0 / p.rho * (math.exp(p.rho * b) - math.exp(p.rho * a))
    a, b = max(start, p.tmax) - p.tmax, end - p.tmax
    if b > a:
        for weight, k in ((1.0 - p.fb, p.alpha), (p.fb, p.beta)):
            total += p.cmax * weight / k * (math.exp(-k * a) - math.exp(-k * b))
    return total
