"""Subjects, visits and true kinetics of the simulated trial.

The simulated trial imitates the seed study: a dose-escalation Phase I/II trial of
CD19 CAR T cells in refractory lupus, 3 dose levels, visits from screening (day -7)
to a year or two. Each subject's CAR T cells per µL blood follow the Stein 2019 model
(:mod:`ckpk.pk.kinetics`) with between-subject variability around the published
typical values; one or two subjects do not expand at all (non-responders).

Blood composition around the infusion is modelled just enough to make the flow and
qPCR read-outs realistic: lymphodepletion (fludarabine/cyclophosphamide before day 0)
depletes native T and B cells, which recover slowly; CAR T cells kill B cells (B-cell
aplasia), and B cells return in some responders after several months.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ckpk.pk.kinetics import TYPICAL, SteinParameters, stein_curve

# Nominal visit days (day 0 = infusion; day -7 = screening).
NOMINAL_DAYS = (-7, 0, 1, 4, 7, 10, 14, 21, 28, 42, 56, 90, 180, 270, 365)

# Dose levels of the escalation (CAR+ cells/kg) and how many subjects each gets, in
# the order subjects are enrolled: 3+3 escalation, then expansion at the top level.
DOSE_LEVELS = {"DL1": 1.0e5, "DL2": 3.0e5, "DL3": 1.0e6}

# Diploid human genome mass: 6.6 pg, so 1 µg of genomic DNA holds 151,515 cells.
CELLS_PER_UG_DNA = 1e6 / 6.6


@dataclass(frozen=True)
class Subject:
    """One simulated subject and the true state of their blood."""

    subject_id: str
    dose_level: str
    dose: float
    cohort: str
    infusion_date: str
    responder: bool
    kinetics: SteinParameters  # CAR T cells per µL blood
    vcn: float  # transgene copies per CAR T cell (vector copy number)
    nucleated_per_ul: float  # nucleated cells per µL in the DNA extract's blood
    t_cells0: float  # native T cells per µL at screening
    b_cells0: float  # B cells per µL at screening
    nk_cells0: float
    monocytes0: float
    granulocytes0: float
    b_recovery_day: float  # day B cells start to return (inf = never in follow-up)
    single_platform: bool  # site uses counting-bead tubes (else CBC dual-platform)
    visits: tuple[float, ...] = field(default=())

    @property
    def copies_kinetics(self) -> SteinParameters:
        """The qPCR curve: copies/µg = CAR cells/µL × VCN / nucleated cells/µL × cells/µg.

        The nucleated-cell denominator is held constant per subject, so copies/µg is an
        exact Stein curve with a scaled Cmax (a simplification: in reality it moves
        with the white count).
        """
        scale = self.vcn / self.nucleated_per_ul * CELLS_PER_UG_DNA
        k = self.kinetics
        return SteinParameters(
            cmax=k.cmax * scale, tmax=k.tmax, foldx=k.foldx, alpha=k.alpha, beta=k.beta, fb=k.fb
        )


def _lognormal(rng: np.random.Generator, median: float, cv: float) -> float:
    sigma = math.sqrt(math.log(1.0 + cv * cv))
    return float(median * math.exp(rng.normal(0.0, sigma)))


def _logit_normal(rng: np.random.Generator, typical: float, sd: float) -> float:
    z = math.log(typical / (1.0 - typical)) + rng.normal(0.0, sd)
    return 1.0 / (1.0 + math.exp(-z))


def draw_subjects(
    n_subjects: int, rng: np.random.Generator, follow_up_days: float = 365.0
) -> list[Subject]:
    """Draw the trial's subjects: dose levels, kinetics, blood counts and visit days."""
    levels = _assign_dose_levels(n_subjects)
    # Non-responders: one in the low-dose cohort and, in larger trials, one more.
    n_non = 1 if n_subjects < 10 else 2
    non_responders = set(
        rng.choice(np.arange(n_subjects), size=min(n_non, n_subjects), replace=False).tolist()
    )
    start = np.datetime64("2024-03-04")
    subjects = []
    for i in range(n_subjects):
        level = levels[i]
        dose = DOSE_LEVELS[level]
        responder = i not in non_responders
        # Peak CAR T cells/µL rises with dose (exponent 0.5, as seen across CAR T
        # dose-finding trials) around 60 cells/µL at the top dose.
        cmax_typical = 60.0 * (dose / DOSE_LEVELS["DL3"]) ** 0.5
        if responder:
            kinetics = SteinParameters(
                cmax=_lognormal(rng, cmax_typical, 0.8),
                tmax=min(max(_lognormal(rng, TYPICAL.tmax, 0.25), 4.0), 21.0),
                foldx=max(_lognormal(rng, TYPICAL.foldx, 1.0), 50.0),
                alpha=_lognormal(rng, TYPICAL.alpha, 0.4),
                beta=_lognormal(rng, TYPICAL.beta, 0.5),
                fb=_logit_normal(rng, TYPICAL.fb, 0.8),
            )
        else:
            # No expansion: the infused cells wash out below any assay's LLOQ.
            kinetics = SteinParameters(
                cmax=0.02, tmax=1.0, foldx=2.0, alpha=0.3, beta=0.05, fb=0.01
            )
        infusion = start + np.timedelta64(int(i * 23 + rng.integers(0, 10)), "D")
        # The last enrolled subjects have shorter follow-up at the data cut-off.
        last_day = follow_up_days if i < n_subjects - 3 else min(follow_up_days, 180.0)
        subjects.append(
            Subject(
                subject_id=f"S{i + 1:02d}",
                dose_level=level,
                dose=dose,
                cohort="escalation" if i < 6 else "expansion",
                infusion_date=str(infusion),
                responder=responder,
                kinetics=kinetics,
                vcn=_lognormal(rng, 2.0, 0.3),
                nucleated_per_ul=_lognormal(rng, 2000.0, 0.3),
                t_cells0=_lognormal(rng, 900.0, 0.3),
                b_cells0=_lognormal(rng, 180.0, 0.4),
                nk_cells0=_lognormal(rng, 200.0, 0.3),
                monocytes0=_lognormal(rng, 450.0, 0.25),
                granulocytes0=_lognormal(rng, 3500.0, 0.3),
                b_recovery_day=float(rng.uniform(100.0, 250.0)) if responder else 0.0,
                # The expansion cohort's second site has no counting-bead tubes.
                single_platform=not (i >= 6 and i % 3 == 2),
                visits=draw_visits(rng, last_day),
            )
        )
    return subjects


def _assign_dose_levels(n_subjects: int) -> list[str]:
    order = ["DL1"] * 3 + ["DL2"] * 3
    if n_subjects <= len(order):
        # Small trials (tests): spread subjects over all levels.
        names = list(DOSE_LEVELS)
        return [names[i % len(names)] for i in range(n_subjects)]
    return order + ["DL3"] * (n_subjects - len(order))


def draw_visits(rng: np.random.Generator, last_day: float) -> tuple[float, ...]:
    """Visit days: nominal days with ~6 % missed visits and later visits shifted."""
    days = []
    for nominal in NOMINAL_DAYS:
        if nominal > last_day:
            break
        if nominal > 1 and rng.random() < 0.06:
            continue  # missed visit
        day = float(nominal)
        if nominal >= 14 and rng.random() < 0.3:
            window = 2 if nominal <= 56 else 7
            day += float(rng.integers(-window, window + 1))
        days.append(day)
    return tuple(sorted(set(days)))


@dataclass(frozen=True)
class BloodState:
    """True cells per µL of blood of one subject on one day."""

    car_t: float
    t_native: float
    b_cells: float
    nk_cells: float
    monocytes: float
    granulocytes: float

    @property
    def t_cells(self) -> float:
        return self.t_native + self.car_t

    @property
    def lymphocytes(self) -> float:
        return self.t_cells + self.b_cells + self.nk_cells

    @property
    def car_pct_cd3(self) -> float:
        return 100.0 * self.car_t / self.t_cells


def blood_state(subject: Subject, day: float) -> BloodState:
    """The true blood of ``subject`` on ``day``.

    Lymphodepletion ends just before day 0: native T and NK cells drop to 10-20 % and
    recover with time constants of 60 and 20 days; granulocytes dip for ~10 days; B
    cells drop and, in responders, are then cleared by CAR T cells until they return.
    """
    car = float(stein_curve(day, subject.kinetics)) if day >= 0 else 0.0
    if day < 0:
        return BloodState(
            car_t=0.0,
            t_native=subject.t_cells0,
            b_cells=subject.b_cells0,
            nk_cells=subject.nk_cells0,
            monocytes=subject.monocytes0,
            granulocytes=subject.granulocytes0,
        )
    t_native = subject.t_cells0 * (0.1 + 0.7 * (1.0 - math.exp(-day / 60.0)))
    nk = subject.nk_cells0 * (0.2 + 0.8 * (1.0 - math.exp(-day / 20.0)))
    granulocytes = subject.granulocytes0 * (0.3 + 0.7 * (1.0 - math.exp(-day / 10.0)))
    monocytes = subject.monocytes0 * (0.5 + 0.5 * (1.0 - math.exp(-day / 10.0)))
    b_after_ld = 0.2 * subject.b_cells0
    if subject.responder:
        b = b_after_ld * math.exp(-day / 2.0) + 0.002 * subject.b_cells0
        if day > subject.b_recovery_day:
            # Naive B cells return after aplasia (as reported in lupus CAR T trials).
            b += subject.b_cells0 * (1.0 - math.exp(-(day - subject.b_recovery_day) / 40.0))
    else:
        b = subject.b_cells0 * (0.2 + 0.8 * (1.0 - math.exp(-day / 30.0)))
    return BloodState(
        car_t=car,
        t_native=t_native,
        b_cells=b,
        nk_cells=nk,
        monocytes=monocytes,
        granulocytes=granulocytes,
    )


def true_copies_per_ug(subject: Subject, day: float) -> float:
    """True transgene copies per µg genomic DNA on ``day``."""
    if day < 0:
        return 0.0
    return float(stein_curve(day, subject.copies_kinetics))
