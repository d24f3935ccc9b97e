"""Clinical endpoints and B-cell aplasia truth of the simulated trial.

``clinical.tsv`` gives each subject the endpoints of the lupus trial: SRI-4 response at
days 90 and 180, the worst CRS grade and dose-limiting toxicity within 28 days. Response
is more likely at higher CAR T exposure, by a stated rule (:data:`RESPONSE_RULE`) whose
per-subject probabilities go to ``truth/clinical.tsv``: the exposure-response analysis
can then be checked against what was built in.

``truth/b_cells.tsv`` holds the true B-cell aplasia of each subject at the default
threshold (1 cell/µL): the first day after the infusion the true B-cell curve falls
below it, and the first later day it rises back.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

from ckpk.pk.kinetics import stein_auc
from ckpk.simulate.trial import Subject, blood_state

APLASIA_BELOW = 1.0  # cells/µL, the default pd.b_cell_aplasia_below
RESPONSE_RULE = (
    "P(SRI-4 response) = 1 / (1 + exp(-(a + b * log10(AUC0-28 / 100)))), AUC0-28 the true "
    "CAR T cells/uL x day over days 0-28; a = 0.5, b = 1.5 at day 90; a = 0.2, b = 1.5 at "
    "day 180. CRS grade = number of thresholds 30, 100, 300 (cells/uL at the true Cmax) "
    "exceeded after multiplying Cmax by exp(N(0, 0.5)); DLT = yes when CRS grade >= 3."
)
_RESPONSE = {90: (0.5, 1.5), 180: (0.2, 1.5)}
_CRS_THRESHOLDS = (30.0, 100.0, 300.0)


def response_rule_block(indent: int = 16) -> str:
    """:data:`RESPONSE_RULE` wrapped for truth/README.txt, on its own lines."""
    pad = " " * indent
    return "\n" + textwrap.fill(RESPONSE_RULE, 72, initial_indent=pad, subsequent_indent=pad)


def response_probability(auc_0_28: float, day: int) -> float:
    """The rule of :data:`RESPONSE_RULE` for the SRI-4 response at ``day`` (90 or 180)."""
    a, b = _RESPONSE[day]
    x = a + b * math.log10(max(auc_0_28, 1e-3) / 100.0)
    return 1.0 / (1.0 + math.exp(-x))


def clinical_endpoints(
    subjects: list[Subject], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``clinical.tsv`` rows, truth rows with the probability each response was drawn with)."""
    rows, truth = [], []
    for s in subjects:
        auc = stein_auc(s.kinetics, 0.0, 28.0)
        for day in (90, 180):
            p = response_probability(auc, day)
            answer = "yes" if rng.random() < p else "no"
            rows.append((s.subject_id, "SRI-4 response", day, answer))
            truth.append((s.subject_id, "SRI-4 response", day, answer, p, auc, s.kinetics.cmax))
        noisy_cmax = s.kinetics.cmax * math.exp(rng.normal(0.0, 0.5))
        grade = sum(noisy_cmax > t for t in _CRS_THRESHOLDS)
        rows.append((s.subject_id, "CRS grade", 28, str(grade)))
        rows.append((s.subject_id, "DLT", 28, "yes" if grade >= 3 else "no"))
        truth.append((s.subject_id, "CRS grade", 28, str(grade), math.nan, auc, s.kinetics.cmax))
    clinical = pd.DataFrame(rows, columns=["subject_id", "endpoint", "day", "value"])
    columns = ["subject_id", "endpoint", "day", "value", "probability", "auc_0_28", "cmax"]
    return clinical, pd.DataFrame(truth, columns=columns)


def _first_day(days: np.ndarray, below: np.ndarray) -> float:
    hits = np.flatnonzero(below)
    return float(days[hits[0]]) if hits.size else math.nan


def b_cell_truth(subjects: list[Subject], step: float = 0.25) -> pd.DataFrame:
    """True aplasia onset and reconstitution day of each subject (threshold 1 cell/µL),
    on a grid of ``step`` days from day 0 to the subject's last visit."""
    rows = []
    for s in subjects:
        end = max(s.visits) if s.visits else 365.0
        days = np.arange(step, end + step, step)
        level = np.array([blood_state(s, float(d)).b_cells for d in days])
        below = level < APLASIA_BELOW
        onset = _first_day(days, below)
        recon = math.nan
        if math.isfinite(onset):
            recon = _first_day(days, (days > onset) & ~below)
        rows.append(
            {
                "subject_id": s.subject_id,
                "responder": s.responder,
                "threshold_cells_per_ul": APLASIA_BELOW,
                "true_onset_day": onset,
                "true_reconstitution_day": recon,
                "b_recovery_day": s.b_recovery_day if s.responder else math.nan,
            }
        )
    return pd.DataFrame(rows)
